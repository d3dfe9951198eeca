"""Packages whose modules load on first use, so ``import helpers.text`` costs nothing.

Each stage package's ``__init__`` lists its modules in ``__all__`` and calls::

    __getattr__, __dir__ = lazy_modules(__name__, __all__)

``helpers.text.dedup`` then imports ``helpers/text/dedup.py`` the first time it is touched
(PEP 562 module ``__getattr__``); ``from helpers.text import dedup`` works the same way.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

__all__ = ["lazy_modules"]


def lazy_modules(package: str, modules: Sequence[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package whose ``modules`` load lazily."""
    names = tuple(modules)

    def __getattr__(name: str) -> object:
        if name in names:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
