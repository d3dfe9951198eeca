"""Synthetic Data Workshop course package.

The notebooks show the idea; ``helpers`` does the heavy, batched, tested work:

- :mod:`helpers.env`         device, seeding, versions, Colab detection, smoke mode, output folders
- :mod:`helpers.models`      registry of the bundled offline models (any other name is a hub id or path)
- :mod:`helpers.generation`  batched chat generation, structured JSON output, perplexity
- :mod:`helpers.jobs`        resumable sharded job writer (crash-safe, loads as ``datasets.Dataset``)
- :mod:`helpers.embeddings`  batched sentence embeddings and cosine helpers
- :mod:`helpers.diversity`   distinct-n and embedding-spread diversity metrics
- :mod:`helpers.display`     browsable views of data and audio that degrade to plain output
- :mod:`helpers.data`        real data shipped in packages: ShareGPT, HumanEval, LibriVox clips

Text data (01-03): :mod:`helpers.selfinstruct`, :mod:`helpers.filters`, :mod:`helpers.reward`,
:mod:`helpers.judge`, :mod:`helpers.dedup`.
Verifiable data (05-06): :mod:`helpers.sandbox`, :mod:`helpers.codegen`, :mod:`helpers.mathgen`.
Speech data (11-13): :mod:`helpers.spoken_style`, :mod:`helpers.tts`, :mod:`helpers.asr`,
:mod:`helpers.audio`, :mod:`helpers.speech_metrics`.

Submodules are imported lazily so ``import helpers`` stays cheap.
"""
__version__ = "0.1.0"
