"""Multimodal data (chapter 17): scenes rendered by code with their metadata (``scenes``); template, paraphrased and
model-written questions checked against that metadata, and a small FiLM VQA model (``vqa``); digits rendered from fonts in the format of
scikit-learn's handwritten digits, plain or domain-randomised, for sim-to-real experiments (``fontdigits``, chapter 18).

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ['scenes', 'vqa', 'fontdigits']
__getattr__, __dir__ = lazy_modules(__name__, __all__)
