"""Fine-tune a Whisper student's decoder on (pseudo-)labelled audio, with checkpoints and resume.

This is what pseudo-labels are *for* (chapter 13): a teacher transcribes audio that has no
transcript, the labels are filtered, and a student trains on them. distil-whisper
(Gandhi et al., 2023) trained a whole student on teacher labels; on 2 CPU cores we adapt the
student's **decoder** only, with its encoder frozen. A frozen encoder gives the same output
for a clip at every step, so :func:`encode_clips` runs it once per clip and every training
arm (gold labels, filtered teacher labels, all teacher labels) reuses those states: a step
then costs one decoder pass, not a 30-second encoder window per clip.

Written by hand rather than with ``transformers.Seq2SeqTrainer`` because of that cache (the
Trainer would run the frozen encoder on every step, which dominates the cost on a CPU) and
because the loop is short enough to read: pad the label tokens, compute the model's own
cross-entropy (``labels=``), step AdamW.

>>> student = ASR.load("whisper-tiny.en")
>>> states = encode_clips(student, audios)
>>> run = finetune_decoder(student, states, texts, steps=60, checkpoint_dir="build/ft")
>>> run.asr.transcribe(test_audios)
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["encode_clips", "label_ids", "finetune_decoder", "FinetuneRun"]


def encode_clips(asr: Any, audios: Sequence[np.ndarray], *, batch_size: int = 8, sample_rate: int = 16000) -> Any:
    """Run the (frozen) Whisper encoder once per clip: a tensor ``(n, frames, d_model)``.

    Clips are 16 kHz mono arrays of at most 30 s (Whisper's window; longer ones raise).
    """
    import torch

    if asr.backend != "transformers":
        raise ValueError("fine-tuning needs the transformers backend: ASR.load(name, backend='transformers')")
    too_long = [i for i, a in enumerate(audios) if len(a) > 30 * sample_rate]
    if too_long:
        raise ValueError(f"clips {too_long[:5]} are longer than Whisper's 30 s window; cut them first")
    fe = asr.processor.feature_extractor
    enc = asr.model.get_encoder()
    out = []
    with torch.inference_mode():
        for i in range(0, len(audios), batch_size):
            feats = fe([np.asarray(a, dtype=np.float32) for a in audios[i:i + batch_size]], sampling_rate=sample_rate,
                       return_tensors="pt").input_features
            out.append(enc(feats.to(asr.device)).last_hidden_state.float().cpu())
    if not out:
        raise ValueError("no clips to encode")
    return torch.cat(out)


def label_ids(asr: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids the decoder is trained to produce for each text: Whisper's prefix tokens (language and task
    for a multilingual model, then no-timestamps), the text, end of text; without the start token, which
    the model prepends itself when it shifts the labels right. An empty text raises."""
    tok = asr.processor.tokenizer
    start = asr.model.config.decoder_start_token_id
    if asr.multilingual:
        tok.set_prefix_tokens(language="english", task="transcribe", predict_timestamps=False)
    else:
        tok.set_prefix_tokens(predict_timestamps=False)
    out = []
    for i, t in enumerate(texts):
        if not t or not str(t).strip():
            raise ValueError(f"text {i} is empty: drop the clip rather than train on an empty label")
        ids = tok(" " + str(t).strip()).input_ids
        out.append(ids[1:] if ids and ids[0] == start else ids)
    return out


@dataclass
class FinetuneRun:
    """What :func:`finetune_decoder` did: the fine-tuned recogniser and how it got there."""

    asr: Any
    steps: int
    global_step: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    n_examples: int = 0

    def summary(self) -> str:
        text = f"{self.asr.name}: {self.steps} steps in {self.seconds:.0f} s on {self.n_examples} clips"
        if self.resumed_from:
            text += f" (resumed at step {self.resumed_from})"
        if self.losses:
            text += f"; loss {self.losses[0]:.3f} -> {np.mean(self.losses[-5:]):.3f} (mean of the last 5)"
        return text


def _fingerprint(texts: Sequence[str], n: int, lr: float, batch_size: int, seed: int) -> str:
    h = hashlib.sha256(json.dumps([list(texts), n, lr, batch_size, seed]).encode())
    return h.hexdigest()[:16]


def finetune_decoder(asr: Any, states: Any, texts: Sequence[str], *, steps: int = 60, batch_size: int = 8,
                     lr: float = 1e-5, weight_decay: float = 0.0, seed: int = 0, name: str | None = None,
                     checkpoint_dir: str | Path | None = None, checkpoint_every: int = 20,
                     progress: bool = True) -> FinetuneRun:
    """Train a copy of ``asr``'s decoder on ``texts`` for the clips whose encoder ``states`` are given.

    The original ``asr`` is left untouched; the returned run holds a new recogniser (``run.asr``).
    Batches are drawn with ``seed`` (a fresh permutation per pass over the clips). With
    ``checkpoint_dir`` the decoder, optimiser and step are saved every ``checkpoint_every`` steps
    and at the end, in a file named after a fingerprint of the labels, clip count and settings: a
    call with the same ones resumes from the last checkpoint (a finished run just reloads), while
    other data or settings start a checkpoint of their own instead of mixing into this one.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers.modeling_outputs import BaseModelOutput

    from helpers.speech.asr import ASR

    if len(texts) != len(states):
        raise ValueError(f"{len(texts)} texts but {len(states)} encoder states")
    if steps < 1 or batch_size < 1:
        raise ValueError("steps and batch_size must be at least 1")
    if not len(texts):
        raise ValueError("no clips to train on")
    labels = label_ids(asr, texts)
    model = copy.deepcopy(asr.model).float().to("cpu")
    model.train()
    for p in model.get_encoder().parameters():
        p.requires_grad_(False)
    params = [p for p in model.get_decoder().parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    fp = _fingerprint(texts, len(states), lr, batch_size, seed)
    start, losses = 0, []
    ckpt = Path(checkpoint_dir) / f"decoder-{fp}.pt" if checkpoint_dir else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        if int(saved["step"]) > steps:
            raise ValueError(f"{ckpt} is at step {saved['step']}, past steps={steps}; ask for at least that many")
        model.get_decoder().load_state_dict(saved["decoder"])
        opt.load_state_dict(saved["optimizer"])
        start, losses = int(saved["step"]), list(saved["losses"])

    def save(step: int) -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"fingerprint": fp, "decoder": model.get_decoder().state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "losses": losses}, tmp)
        tmp.replace(ckpt)  # a crash while saving never leaves a half-written checkpoint

    rng = np.random.default_rng(seed)
    # one permutation per pass over the clips, as many passes as the steps need (a batch may span two passes)
    order = np.concatenate([rng.permutation(len(labels)) for _ in range(math.ceil(steps * batch_size / len(labels)) + 1)])
    t0 = time.perf_counter()
    for step in tqdm(range(start, steps), desc=f"fine-tune {name or asr.name}", disable=not progress,
                     initial=start, total=steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        width = max(len(labels[i]) for i in idx)
        lab = torch.full((len(idx), width), -100, dtype=torch.long)
        for r, i in enumerate(idx):
            lab[r, :len(labels[i])] = torch.tensor(labels[i])
        out = model(encoder_outputs=BaseModelOutput(last_hidden_state=states[idx]), labels=lab)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(out.loss.detach()))
        if ckpt is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            save(step + 1)
    model.eval()
    tuned = ASR(name or f"{asr.name}+ft", "transformers", model, asr.processor, "cpu")
    tuned.threads = asr.threads
    return FinetuneRun(tuned, steps - start, steps, time.perf_counter() - t0, losses, start, len(labels))
