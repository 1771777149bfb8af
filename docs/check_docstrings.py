"""List the public skkernelnet classes and functions whose docstring lacks an Examples section.

Public means: listed in the ``__all__`` of a skkernelnet module. Run from the
repository root::

    python docs/check_docstrings.py            # classes and functions
    python docs/check_docstrings.py --methods  # also their public methods and properties

Exits with status 1 when something is missing, so that CI can run it.
"""

import argparse
import importlib
import inspect
import pkgutil
import sys

from numpydoc.docscrape import ClassDoc, FunctionDoc

import skkernelnet


def public_objects():
    """``(qualified name, object)`` of every class and function in a module's ``__all__``."""
    seen = {}
    names = ["skkernelnet"] + [
        f"skkernelnet.{m.name}"
        for m in pkgutil.iter_modules(skkernelnet.__path__)
        if not m.name.startswith("_")
    ]
    for modname in names:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("skkernelnet"):
                continue  # re-exported from elsewhere (e.g. ConvergenceWarning)
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


def has_examples(obj):
    if not inspect.getdoc(obj):
        return False
    doc = (
        ClassDoc(obj, config={"show_class_members": False})
        if inspect.isclass(obj)
        else FunctionDoc(obj)
    )
    return bool(doc["Examples"])


def public_members(cls):
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        func = member.fget if isinstance(member, property) else member
        if inspect.isfunction(func):
            yield name, func


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", action="store_true", help="check methods and properties too")
    args = parser.parse_args(argv)
    missing = []
    objects = public_objects()
    for qualname, obj in objects:
        if not has_examples(obj):
            missing.append(qualname + ("" if inspect.getdoc(obj) else " (no docstring)"))
        if args.methods and inspect.isclass(obj):
            for name, func in public_members(obj):
                if not inspect.getdoc(func):
                    missing.append(f"{qualname}.{name} (no docstring)")
                elif not FunctionDoc(func)["Examples"]:
                    missing.append(f"{qualname}.{name}")
    print(f"{len(objects)} public classes and functions checked.")
    if missing:
        print(f"{len(missing)} without an Examples section:")
        print("\n".join(f"  {name}" for name in missing))
        return 1
    print("Every one has an Examples section.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
