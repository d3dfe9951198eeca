"""Speech data (chapters 11-16): spoken-style rewriting, TTS, ASR (with the CTranslate2 conversion) and fine-tuning a Whisper student's decoder on (pseudo-)labels, audio utilities, speech metrics, audio augmentation (noise, rooms, telephone, codecs), bandwidth extension, encoder distillation (a small conv student trained with a cosine loss to reproduce a Whisper encoder's features, judged by a leave-one-voice-out linear probe), and two-channel dialogue (turn timing with gaps, overlaps and backchannels, a stereo mixer, voice activity, inter-pausal units, pauses, gaps and overlaps, and turn-shift examples from voice activity).

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap.
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ['spoken_style', 'tts', 'asr', 'asr_finetune', 'audio', 'speech_metrics', 'augment', 'bandwidth', 'encoder_distill', 'dialogue']
__getattr__, __dir__ = lazy_modules(__name__, __all__)
