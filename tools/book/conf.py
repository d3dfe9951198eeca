"""Sphinx configuration of the course book (used by ``tools/build_book.py`` with ``sphinx -c tools/book``).

The stack is Jupyter Book 1's: Sphinx, MyST-NB (reads the executed notebooks, never runs them) and
sphinx-book-theme (chapter navigation, in-page table of contents, search, launch buttons). The source folder
holds the executed notebooks and an ``index.md`` that ``build_book`` writes (course map and toctree).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tools.build_book import LOCAL_MATHJAX_PATH, local_mathjax  # noqa: E402
from tools.course import BRANCH, REPO  # noqa: E402

project = "Synthetic Data Workshop"
author = "the course authors"
copyright = "the course authors, Apache-2.0"
root_doc = "index"

extensions = ["myst_nb"]
exclude_patterns = ["_doctrees", "**/.ipynb_checkpoints"]

# MyST-NB: render the stored outputs as they are; the notebooks were executed by papermill before.
nb_execution_mode = "off"
nb_merge_streams = True
nb_output_stderr = "show"
nb_code_prompt_show = "Show code cell {type}"
nb_code_prompt_hide = "Hide code cell {type}"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "html_image"]
myst_heading_anchors = 3
# Maths: Debian's MathJax 2 copied into the site by build_book when it is installed (the book renders offline);
# Sphinx's default (MathJax 3 from a CDN) otherwise.
# MyST-NB marks each page's section "tex2jax_ignore" and the math elements "math": MathJax 2 is told the same
# through its tex2jax options (MyST's own update only knows the MathJax 3 and 4 configuration).
if local_mathjax() is not None:
    mathjax_path = LOCAL_MATHJAX_PATH
    myst_update_mathjax = False
    mathjax2_config = {"tex2jax": {"processClass": "tex2jax_process|mathjax_process|math|output_area",
                                   "ignoreClass": "tex2jax_ignore|mathjax_ignore"}}
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = project
html_copy_source = False  # the .ipynb copies would double the site's size
html_show_sourcelink = False
html_theme_options = {
    "repository_url": f"https://github.com/{REPO}",
    "repository_branch": BRANCH,
    "path_to_docs": "notebooks",  # page NN_name <-> notebooks/NN_name.ipynb, for the Colab button
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "notebook_interface": "classic"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
