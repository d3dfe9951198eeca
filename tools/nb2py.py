"""Print a notebook as a percent-format script: ``python -m tools.nb2py notebooks/NN_x.ipynb``."""
import sys

import nbformat

from tools.py2nb import notebook_to_script

if __name__ == "__main__":
    sys.stdout.write(notebook_to_script(nbformat.read(sys.argv[1], as_version=4)))
