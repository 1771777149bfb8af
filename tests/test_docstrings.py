"""Documentation checks: runnable examples everywhere, every estimator parameter documented.

Public means listed in the ``__all__`` of a skkernelnet module.
"""

import ast
import importlib
import inspect
import pkgutil

import pytest

import skkernelnet
from skkernelnet import (
    KernelCollaborativeFilter,
    KernelNetClassifier,
    KernelNetRegressor,
    RatingBaseline,
)

docscrape = pytest.importorskip("numpydoc.docscrape")


def _public_objects():
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


def _doc(obj):
    if inspect.isclass(obj):
        return docscrape.ClassDoc(obj, config={"show_class_members": False})
    return docscrape.FunctionDoc(obj)


@pytest.mark.parametrize("name, obj", _public_objects(), ids=[n for n, _ in _public_objects()])
def test_public_object_has_an_examples_section(name, obj):
    assert inspect.getdoc(obj), f"{name} has no docstring"
    assert _doc(obj)["Examples"], f"{name} has no Examples section"


@pytest.mark.parametrize(
    "Estimator",
    [KernelNetClassifier, KernelNetRegressor, KernelCollaborativeFilter, RatingBaseline],
)
def test_estimator_documents_each_parameter_with_its_default(Estimator):
    documented = {}
    for parameter in _doc(Estimator)["Parameters"]:
        for name in parameter.name.split(","):
            documented[name.strip()] = parameter.type
    signature = inspect.signature(Estimator.__init__)
    declared = {name: p.default for name, p in signature.parameters.items() if name != "self"}
    assert set(documented) == set(declared), "documented vs declared parameters"
    for name, default in declared.items():
        text = documented[name]
        assert "default=" in text, f"{name}: no default in {text!r}"
        assert ast.literal_eval(text.rsplit("default=", 1)[1].strip()) == default, name
