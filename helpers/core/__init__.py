"""Shared by every stage: environment and smoke mode, the model registry, resumable jobs, display, data loaders and dataset saving, small text utilities, statistics.

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

import importlib

__all__ = ['env', 'models', 'jobs', 'display', 'data', 'io', 'stats', 'textutil']


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(__all__))
