"""Shared by every stage: environment and smoke mode, the model registry, resumable jobs, display, data loaders and dataset saving, small text utilities, statistics, and the classifier two-sample test
(``twosample``: how well a classifier tells two sets apart, e.g. real from synthetic).

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ['env', 'models', 'jobs', 'display', 'data', 'io', 'stats', 'textutil', 'lazy', 'twosample']
__getattr__, __dir__ = lazy_modules(__name__, __all__)
