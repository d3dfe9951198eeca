"""Synthetic Data Workshop course package.

The notebooks show the idea; ``helpers`` does the heavy, batched, tested work. It is split by
the stage of a synthetic-data pipeline:

| package | what lives there |
|---|---|
| `helpers.core` | environment and smoke mode, model registry, resumable jobs, display, data loaders and dataset saving, small utilities, statistics, the classifier two-sample test |
| `helpers.lm` | language models: batched generation on transformers, llama.cpp or any OpenAI-compatible server, embeddings, model-as-judge |
| `helpers.text` | text data: self-instruct, diversity, filters, reward model, dedup, paraphrase, augmentation (table QA, typos, safety and false-premise data, refusal checks) |
| `helpers.verify` | verifiable data: the code sandbox, code generation with tests, maths with known answers |
| `helpers.speech` | speech data: spoken-style rewriting, TTS (Piper, Kokoro, espeak-ng), ASR, audio, augmentation (noise, rooms, telephone, codecs), bandwidth extension, two-channel dialogue (turn timing, stereo mixing, voice activity and turn statistics), speech metrics, distilling a Whisper encoder into a small student |
| `helpers.train` | training on synthetic data: DPO and SFT of the bundled LMs (TRL, LoRA), a tiny transformer trained from scratch, soft-label distillation (chapters 07-10, 16) |
| `helpers.vision` | images: scenes rendered with known answers, template and model-written QA checked against them, a small VQA model (chapter 17); digits rendered from fonts, plain or domain-randomised (chapter 18) |
| `helpers.scale` | scaling out: one pipeline as batch functions run on the course's job runner, on Ray Data or on datatrove, row accounting, kill-and-resume drills (chapter 19) |

The rule (``tests/test_layout.py``): a stage package (``text``, ``verify``, ``speech``, ``train``,
``vision``, ``scale``) imports only ``helpers.core``, ``helpers.lm`` and its own modules; ``lm``
imports only ``core`` and itself; ``core`` imports only itself. No module imports a
leading-underscore name from another module. Every package loads its modules lazily, so
``import helpers`` and ``import helpers.text`` stay cheap.

Chapter -> the modules it uses (the same table is in the README; a test keeps both in step
with the notebooks' imports):

| chapter | modules |
|---|---|
| 00 getting_started | core.display, core.env, core.jobs, core.models, core.stats, lm.embeddings, lm.generation, text.diversity |
| 01 self_instruct_diversity | core.display, core.env, core.io, core.jobs, core.stats, lm.embeddings, lm.generation, text.diversity, text.selfinstruct |
| 02 quality_filtering | core.data, core.display, core.env, core.io, core.stats, lm.embeddings, lm.generation, lm.judge, text.filters, text.reward |
| 03 deduplication | core.data, core.display, core.env, core.io, core.stats, lm.embeddings, lm.generation, text.dedup, text.paraphrase |
| 04 augmentation_robustness | core.display, core.env, core.io, core.jobs, core.stats, lm.generation, text.augment, text.paraphrase, train.finetune |
| 05 code_execution_feedback | core.display, core.env, core.io, core.models, core.stats, lm.generation, lm.judge, verify.codegen, verify.sandbox |
| 06 math_verification | core.display, core.env, core.io, core.models, core.stats, lm.generation, verify.mathgen |
| 07 preference_data_dpo | core.data, core.env, core.io, core.jobs, core.stats, lm.embeddings, lm.generation, text.reward, train.finetune, train.preference, verify.codegen, verify.sandbox |
| 08 self_improvement_flywheel | core.data, core.env, core.io, core.stats, train.finetune, train.flywheel, train.tiny |
| 09 textbooks_are_all_you_need | core.env, core.io, core.jobs, core.stats, core.textutil, lm.embeddings, lm.generation, train.curriculum, train.textbooks, train.tiny, verify.codegen, verify.sandbox |
| 10 curriculum_learning | core.env, core.io, core.stats, train.curriculum, train.flywheel, train.tiny |
| 11 spoken_style_rewriting | core.data, core.display, core.env, core.io, core.models, core.stats, lm.embeddings, lm.generation, speech.spoken_style |
| 12 tts_speech_instruction_data | core.data, core.display, core.env, core.io, core.jobs, core.stats, speech.asr, speech.speech_metrics, speech.spoken_style, speech.tts |
| 13 asr_pseudo_labelling | core.data, core.display, core.env, core.io, core.models, speech.asr, speech.asr_finetune, speech.audio, speech.augment, speech.speech_metrics, speech.spoken_style, speech.tts |
| 14 audio_augmentation_super_resolution | core.data, core.display, core.env, core.io, core.stats, speech.asr, speech.audio, speech.augment, speech.bandwidth, speech.speech_metrics, speech.spoken_style, speech.tts |
| 15 two_channel_dialogue | core.data, core.display, core.env, core.io, core.stats, speech.asr, speech.dialogue, speech.speech_metrics, speech.tts |
| 16 distillation | core.data, core.display, core.env, core.io, core.stats, speech.audio, speech.encoder_distill, speech.spoken_style, speech.tts, train.distill |
| 17 multimodal_synthetic_qa | core.env, core.io, core.stats, lm.generation, text.paraphrase, vision.scenes, vision.vqa |
| 18 sim_to_real_gap | core.data, core.display, core.env, core.io, core.stats, core.twosample, lm.embeddings, lm.generation, speech.asr, speech.audio, speech.encoder_distill, speech.speech_metrics, speech.tts, vision.fontdigits |
| 19 scaling_out | core.env, core.io, core.jobs, core.models, core.stats, lm.generation, lm.server, scale.datatrove_runner, scale.pipeline, text.dedup, verify.mathgen |
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__version__ = "0.1.0"
__all__ = ["core", "lm", "text", "verify", "speech", "train", "vision", "scale"]
__getattr__, __dir__ = lazy_modules(__name__, __all__)
