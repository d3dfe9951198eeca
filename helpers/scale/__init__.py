"""Scaling the pipeline out (chapter 19): one pipeline, several runners, crashes counted.

- :mod:`~helpers.scale.pipeline`: a pipeline written once as a factory of batch functions, run on
  the course's :class:`~helpers.core.jobs.ResumableJob` and on Ray Data (``map_batches`` on an
  actor pool; no resume, Ray Data's own checkpointing, or the course's skip-done filter); row
  accounting by id and content hash (lost, duplicated, changed); a harness that SIGKILLs a run in
  a subprocess at random points and resumes it. Generation on inference servers (vLLM, SGLang,
  llama.cpp, Ollama) is :mod:`helpers.lm.server`, used through ``LM.load(..., engine=...)``.
- :mod:`~helpers.scale.datatrove_runner`: the same factory on Hugging Face datatrove's local executor
  (its JSON-lines reader and writer around a custom step; resumed by datatrove's per-task completion
  markers, so a killed task is redone from its first row); ``python -m helpers.scale.pipeline
  --engine datatrove`` runs it in a subprocess for the kill drill.

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ["datatrove_runner", "pipeline"]
__getattr__, __dir__ = lazy_modules(__name__, __all__)
