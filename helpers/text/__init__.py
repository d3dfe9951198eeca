"""Text data (chapters 01-04): self-instruct, diversity, filters, reward model, dedup, paraphrase, augment
(table-to-QA templates, typo noise, safety and false-premise data with rule checks).

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ['selfinstruct', 'diversity', 'filters', 'reward', 'dedup', 'paraphrase', 'augment']
__getattr__, __dir__ = lazy_modules(__name__, __all__)
