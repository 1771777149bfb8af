"""Sphinx configuration of the skkernelnet documentation.

Build (warnings are errors, the gallery is executed): ``.ci/docs``, i.e.
``python -m sphinx -W --keep-going -j 1 -b html docs docs/_build/html``.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

# The gallery runs in this process. The examples train small networks on which
# torch's intra-op threads only add overhead, and on a busy two-core machine a
# thread that waits for a core slows every small operation down; one thread
# keeps the build fast and its timings stable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

import skkernelnet  # noqa: E402

# -- project --------------------------------------------------------------------------------
project = "skkernelnet"
author = "skkernelnet developers"
copyright = "skkernelnet developers, BSD-3-Clause"
release = skkernelnet.__version__
version = ".".join(release.split(".")[:2])

# -- general --------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    "markdown_include",
]
# No network access during the build: no intersphinx. References to scikit-learn
# or torch objects in docstrings render as plain code. (MathJax is loaded by the
# reader's browser, not during the build.)
templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
default_role = "literal"
pygments_style = "sphinx"
smartquotes = False  # code-like text (dicts, ids) keeps its straight quotes
root_doc = "index"

# -- autodoc / autosummary / numpydoc -------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- plot directive (figures on the theory page) --------------------------------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.autolayout": True}

# -- sphinx-gallery -------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # examples/ also holds plain scripts (e.g. train_kernel_layers.py): only
    # plot_*.py files belong to the gallery, and every one of them is executed.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"^(?!plot_)",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("skkernelnet",),
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "download_all_examples": False,
    "reset_modules": ("matplotlib", "gallery_reset.reset_torch"),
    "capture_repr": (),
}

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skkernelnet {release}"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": [], "changelog": []}
html_show_sourcelink = False
html_last_updated_fmt = None
html_copy_source = False

# -- pages that other work adds ---------------------------------------------------------
# docs/tabular_defaults.rst is written separately; until it exists, the user guide's
# toctree leaves it out instead of failing the -W build.
OPTIONAL_DOCS = ("tabular_defaults",)


def _drop_missing_optional_docs(app, docname, source):
    if docname != "user_guide":
        return
    for name in OPTIONAL_DOCS:
        if not (DOCS / f"{name}.rst").is_file():
            source[0] = "\n".join(line for line in source[0].splitlines() if line.strip() != name)


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing plumbing (set_fit_request, ...) is generated for
    # every estimator and documented by scikit-learn.
    if name == "get_metadata_routing" or (name.startswith("set_") and name.endswith("_request")):
        return True
    # torch's extra_repr, and forward methods without a docstring of their own, would
    # show torch's generic nn.Module text.
    if name == "extra_repr" or (name == "forward" and getattr(obj, "__doc__", None) is None):
        return True
    return None


def _unresolved_sklearn_refs(app, env, node, contnode):
    # Methods inherited from scikit-learn (score, get_params, set_output, ...) keep
    # their docstrings, whose :ref: and :term: targets live in scikit-learn's docs.
    # Without intersphinx (no network during the build) they render as plain text.
    if node.get("reftype") in ("ref", "term") and "docstring of sklearn." in (node.source or ""):
        return contnode
    return None


# Public objects (in a module's __all__) that the API reference leaves out on purpose.
API_EXCLUDE = {
    "skkernelnet.datasets.RemoteFile",  # a namedtuple describing the download table
    "skkernelnet.training.ConvergenceWarning",  # scikit-learn's, re-exported
}


def _check_api_complete(app, env):
    """Warn (an error under -W) when a public class or function has no API entry."""
    import importlib
    import inspect
    import pkgutil

    from sphinx.util import logging

    documented = set(env.get_domain("py").objects)
    exporters = {}
    modules = ["skkernelnet"] + [
        f"skkernelnet.{m.name}" for m in pkgutil.iter_modules(skkernelnet.__path__)
    ]
    for modname in modules:
        if modname.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                exporters.setdefault(id(obj), []).append(f"{modname}.{name}")
    for names in exporters.values():
        if any(name in API_EXCLUDE for name in names):
            continue
        if not any(name in documented for name in names):
            logging.getLogger(__name__).warning(
                "public %s is missing from docs/api.rst (or add it to API_EXCLUDE in conf.py)",
                " / ".join(names),
                location="api",
            )


def setup(app):
    app.connect("env-check-consistency", _check_api_complete)
    app.connect("source-read", _drop_missing_optional_docs)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _unresolved_sklearn_refs)
