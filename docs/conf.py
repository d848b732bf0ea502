"""Sphinx configuration: user guide, command line, API reference from the
numpydoc docstrings, and a gallery of the examples executed at build time."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

project = "skinfluence"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# No network at build time: cross-references to other projects' docs stay
# plain text.
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
}
