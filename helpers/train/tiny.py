"""A tiny decoder-only transformer, a character tokenizer and a plain training loop, all in torch.

This module is hand-written on purpose, because it teaches: a learner reads the whole model
(:class:`TinyLM`, one screen) and the whole training loop (:func:`train_tiny`) without any
framework in between. It is meant for experiments that train many models from scratch in
minutes: seeds, rounds of synthetic data, data mixes. The default model (about 3.2M parameters,
a fortieth of SmolLM2-135M) trains at roughly 1,500 tokens/s on 2 CPU cores
(``benchmarks/bench_train.py``); on such a small model one torch thread is often as fast as two.

>>> tok = CharTokenizer.from_corpus(texts)
>>> model = TinyLM(TinyConfig(vocab_size=tok.vocab_size))            # about 3.2M parameters
>>> report = train_tiny(model, texts, tokenizer=tok, steps=500, checkpoint_dir="ckpt")
>>> generate(model, tok, ["3+4="], max_new_tokens=4, temperature=0)
>>> perplexity(model, tok, held_out)

What is in it:

* :class:`TinyLM`: learned token and position embeddings, pre-norm blocks (LayerNorm, causal
  self-attention through ``torch.nn.functional.scaled_dot_product_attention``, LayerNorm, MLP),
  a final LayerNorm, and an output layer tied to the token embeddings.
* :class:`CharTokenizer`: one id per character of a corpus, plus ``<pad>`` (0), ``<unk>`` (1),
  ``<bos>`` (2) and ``<eos>`` (3).
* :func:`train_tiny`: AdamW with linear warm-up and a cosine decay, gradient clipping, an
  evaluation hook, seeding, and checkpoints (model, optimizer, step, RNG states, written
  atomically) that a second call with the same ``checkpoint_dir`` resumes from; a resumed run
  ends with the same weights as one that was never interrupted.
* :func:`generate` (batched; greedy at ``temperature=0``) and :func:`perplexity`.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.env import seed_everything
from helpers.core.jobs import fingerprint
from helpers.train.report import PeakMemory, TrainReport

__all__ = ["CharTokenizer", "TinyConfig", "TinyLM", "train_tiny", "generate", "perplexity",
           "latest_checkpoint", "load_checkpoint"]


# --------------------------------------------------------------------------- tokenizer
class CharTokenizer:
    """One token per character, built from a corpus.

    Ids 0 to 3 are the special tokens ``<pad>``, ``<unk>``, ``<bos>`` and ``<eos>``; the corpus's
    characters follow in sorted order. A character that was not in the corpus encodes to
    :attr:`unk_id` and decodes to :attr:`unk_char`.

    Args:
        chars: the characters of the vocabulary (duplicates are dropped).
        unk_char: what an unknown id decodes to.
    """

    SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, chars: Iterable[str], unk_char: str = "\ufffd") -> None:
        uniq = sorted(set(chars))
        bad = [c for c in uniq if len(c) != 1]
        if bad:
            raise ValueError(f"CharTokenizer takes single characters, got {bad[:5]}")
        self.chars = uniq
        self.unk_char = unk_char
        self.stoi = {c: i + len(self.SPECIALS) for i, c in enumerate(uniq)}
        self.itos = {i: c for c, i in self.stoi.items()}

    @classmethod
    def from_corpus(cls, texts: Iterable[str], min_count: int = 1, **kwargs: Any) -> "CharTokenizer":
        """The tokenizer of every character seen at least ``min_count`` times in ``texts``."""
        counts = Counter(c for t in texts for c in t)
        return cls([c for c, n in counts.items() if n >= min_count], **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.SPECIALS) + len(self.chars)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text`` (unknown characters give :attr:`unk_id`), optionally framed by ``<bos>``/``<eos>``."""
        ids = [self.stoi.get(c, self.unk_id) for c in text]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids: Iterable[int], *, skip_special: bool = True) -> str:
        """Text of ``ids``; pad/bos/eos are dropped (or shown as ``<pad>`` etc. when ``skip_special=False``)."""
        out = []
        for i in ids:
            i = int(i)
            if i in self.itos:
                out.append(self.itos[i])
            elif i == self.unk_id:
                out.append(self.unk_char)
            elif 0 <= i < len(self.SPECIALS):
                if not skip_special:
                    out.append(self.SPECIALS[i])
            else:
                raise ValueError(f"id {i} is outside the vocabulary of {self.vocab_size}")
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"chars": "".join(self.chars), "unk_char": self.unk_char}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CharTokenizer":
        return cls(list(d["chars"]), unk_char=d.get("unk_char", "\ufffd"))

    def __repr__(self) -> str:
        return f"CharTokenizer({self.vocab_size} ids: 4 special + {len(self.chars)} characters)"


# --------------------------------------------------------------------------- model
@dataclass
class TinyConfig:
    """The shape of a :class:`TinyLM`. The defaults give about 3.2M parameters for ~100 characters."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    max_len: int = 128
    dropout: float = 0.0


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, cfg: TinyConfig) -> None:
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"d_model={cfg.d_model} must be divisible by n_heads={cfg.n_heads}")
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if mask is None:  # every position sees itself and the ones before it
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:  # padded batch: ``mask`` (B, 1, T, T) is True where a query may look
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, D)))
        return x + self.drop(self.mlp(self.ln2(x)))


class TinyLM(nn.Module):
    """A small GPT: embeddings, ``n_layers`` pre-norm blocks, final LayerNorm, tied output layer.

    Args:
        cfg: its shape (:class:`TinyConfig`).
        seed: seed of the weight initialisation (normal, std 0.02), so two models built with the
            same seed are identical whatever else used the global RNG.
    """

    def __init__(self, cfg: TinyConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02, generator=g)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` for token ids ``(B, T)``.

        ``attention_mask`` (``(B, T)``, 1 for real tokens, 0 for left padding) is only needed for
        left-padded batches: positions then count from each row's first real token, and padding is
        never looked at.
        """
        B, T = ids.shape
        if T > self.cfg.max_len:
            raise ValueError(f"sequence of {T} tokens is longer than max_len={self.cfg.max_len}")
        mask = None
        if attention_mask is None:
            pos = torch.arange(T, device=ids.device).expand(B, T)
        else:
            keep = attention_mask.bool()
            pos = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()
            eye = torch.eye(T, dtype=torch.bool, device=ids.device)  # a padded query sees itself: no empty rows
            mask = ((causal & keep[:, None, :]) | eye)[:, None]
        x = self.drop(self.tok_emb(ids) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x) @ self.tok_emb.weight.T  # output layer tied to the input embeddings

    def num_parameters(self) -> int:
        """Parameters (the tied output layer counted once)."""
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------- data
Batches = Union[Sequence[str], Sequence[torch.Tensor], Callable[[int], torch.Tensor]]


def _examples(texts: Sequence[str], tok: CharTokenizer, seq_len: int) -> list[list[int]]:
    """``<bos> text <eos>`` per text, cut into pieces of at most ``seq_len + 1`` tokens (inputs + next)."""
    out = []
    for t in texts:
        ids = tok.encode(t, bos=True, eos=True)
        out += [ids[i:i + seq_len + 1] for i in range(0, max(1, len(ids) - 1), seq_len)]
    return [e for e in out if len(e) >= 2]


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)


# --------------------------------------------------------------------------- checkpoints
_CKPT = re.compile(r"^ckpt-(\d{7})\.pt$")


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``folder`` (``ckpt-<step>.pt``), or ``None``."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT.match(p.name)))
    return found[-1][1] if found else None


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary name, flush to disk, then rename: a kill leaves the old file or the new one."""
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> tuple[TinyLM, CharTokenizer | None, dict]:
    """Rebuild ``(model, tokenizer or None, checkpoint dict)`` from a file written by :func:`train_tiny`."""
    ckpt = torch.load(path, map_location=device, weights_only=False)
    model = TinyLM(TinyConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    tok = CharTokenizer.from_dict(ckpt["tokenizer"]) if ckpt.get("tokenizer") else None
    return model, tok, ckpt


# --------------------------------------------------------------------------- training
def lr_at(step: int, *, lr: float, steps: int, warmup: int, min_lr_ratio: float = 0.1) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_tiny(
    model: TinyLM,
    batches_or_texts: Batches,
    *,
    tokenizer: CharTokenizer | None = None,
    steps: int = 500,
    lr: float = 3e-3,
    batch_size: int = 32,
    seq_len: int = 64,
    warmup: int | None = None,
    weight_decay: float = 0.1,
    grad_clip: float = 1.0,
    eval_fn: Callable[[TinyLM, int], dict[str, float]] | None = None,
    eval_every: int = 100,
    log_every: int = 10,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    keep_checkpoints: int = 2,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainReport:
    """Train ``model`` for ``steps`` optimizer steps of next-token prediction; returns a :class:`TrainReport`.

    Args:
        model: the model, already on the device to train on.
        batches_or_texts: the data, one of
            * a list of texts (needs ``tokenizer``): each becomes ``<bos> text <eos>`` (long ones are cut
              into pieces of ``seq_len + 1`` tokens) and every step samples ``batch_size`` of them with a
              seeded generator, right-padded;
            * a list of token-id tensors ``(B, L)``, used in turn (step ``s`` takes ``batches[s % len]``);
            * a function ``step -> tensor (B, L)``, which must depend only on ``step`` for a resume to be exact.
            Each row's first ``L - 1`` ids are the inputs, its last ``L - 1`` the targets; ``pad_id``
            targets (``tokenizer.pad_id``, else 0) do not count in the loss.
        tokenizer: the tokenizer of the texts (also stored in the checkpoints).
        steps: optimizer steps in the whole run (the cosine schedule spans them).
        lr: peak learning rate of AdamW.
        batch_size, seq_len: sequences per step and their length (texts only).
        warmup: linear warm-up steps (default: 5% of ``steps``, at least 1).
        weight_decay: AdamW weight decay (on matrices only, not on biases, norms or position embeddings).
        grad_clip: gradients are clipped to this global norm (``0`` turns it off).
        eval_fn: ``f(model, step) -> {"metric": value}``, called (in eval mode, without gradients)
            every ``eval_every`` steps and after the last step; its values go into the log history.
        log_every: a log entry (``step``, ``loss``, ``lr``) every this many steps; the loss is the
            mean over the steps since the previous entry.
        seed: seeds torch, Python and NumPy and the batch sampler.
        checkpoint_dir: where to write checkpoints; when it already holds one, training resumes from
            the newest (the settings must be the same, else ``ValueError``).
        checkpoint_every: write a checkpoint every this many steps (and after the last step).
        keep_checkpoints: how many of the newest checkpoints to keep.
        stop_after: stop after this many steps *in this call*, without writing a checkpoint, as a
            kill would (for tests and demonstrations of resuming).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    t_setup = time.perf_counter()
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_id if tokenizer is not None else CharTokenizer.pad_id
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if isinstance(batches_or_texts, (str, bytes)):
        raise TypeError("batches_or_texts is one string: pass a list of texts")
    if not callable(batches_or_texts) and len(batches_or_texts) == 0:
        raise ValueError("train_tiny: batches_or_texts is empty: there is nothing to train on")
    warmup = max(1, steps // 20) if warmup is None else warmup
    settings = {"steps": steps, "lr": lr, "batch_size": batch_size, "seq_len": seq_len, "warmup": warmup,
                "weight_decay": weight_decay, "grad_clip": grad_clip, "seed": seed,
                "model_config": asdict(model.cfg)}
    if not callable(batches_or_texts) and isinstance(batches_or_texts[0], str):
        settings["data"] = fingerprint(list(batches_or_texts))

    # The data: a function of the step (and of the sampler's generator, for texts).
    sampler = torch.Generator().manual_seed(seed)
    if callable(batches_or_texts):
        get_batch: Callable[[int], torch.Tensor] = batches_or_texts
    elif isinstance(batches_or_texts[0], str):
        if tokenizer is None:
            raise ValueError("train_tiny on texts needs tokenizer=CharTokenizer(...)")
        if seq_len > model.cfg.max_len:
            raise ValueError(f"seq_len={seq_len} is longer than the model's max_len={model.cfg.max_len}")
        examples = _examples(batches_or_texts, tokenizer, seq_len)
        if not examples:
            raise ValueError("train_tiny: every text is empty")

        def get_batch(step: int) -> torch.Tensor:
            idx = torch.randint(len(examples), (batch_size,), generator=sampler).tolist()
            return _pad([examples[i] for i in idx], pad_id)
    else:
        fixed = list(batches_or_texts)

        def get_batch(step: int) -> torch.Tensor:
            return fixed[step % len(fixed)]

    # AdamW; no weight decay on vectors (biases, LayerNorm) and on position embeddings.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("pos_emb")]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or n.startswith("pos_emb")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))

    # Resume from the newest checkpoint, if any.
    step, log_history, resumed_from = 0, [], None
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        last = latest_checkpoint(ckpt_dir)
        if last is not None:
            ckpt = torch.load(last, map_location=device, weights_only=False)
            differ = sorted(k for k in settings if ckpt["settings"].get(k) != settings[k])
            if differ:
                was = {k: ckpt["settings"].get(k) for k in differ}
                now = {k: settings[k] for k in differ}
                raise ValueError(f"{ckpt_dir} holds a run with other settings ({', '.join(differ)}): it had {was}, "
                                 f"this call has {now}. Use another checkpoint_dir, or delete this one to start over.")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            step, log_history = ckpt["step"], ckpt["log_history"]
            torch.set_rng_state(ckpt["rng"]["torch"])
            if ckpt["rng"].get("cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
            sampler.set_state(ckpt["rng"]["sampler"])
            resumed_from = str(last)
    if resumed_from is None:
        seed_everything(seed)

    def save(at: int) -> None:
        _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": at,
                      "settings": settings, "model_config": asdict(model.cfg), "log_history": log_history,
                      "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
                      "rng": {"torch": torch.get_rng_state(), "sampler": sampler.get_state(),
                              "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}},
                     ckpt_dir / f"ckpt-{at:07d}.pt")
        for old in sorted(p for p in ckpt_dir.iterdir() if _CKPT.match(p.name))[:-keep_checkpoints]:
            old.unlink(missing_ok=True)

    last_eval: dict[str, float] = {}

    def evaluate(at: int) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            last_eval.clear()
            last_eval.update({k: float(v) for k, v in eval_fn(model, at).items()})
        model.train()
        return dict(last_eval)

    # The loop.
    start_step, tokens, window = step, 0, []
    setup_seconds = time.perf_counter() - t_setup
    model.train()
    bar = tqdm(total=steps, initial=step, desc="train_tiny", disable=not progress, leave=False)
    t0 = time.perf_counter()
    with PeakMemory(str(device)) as mem:
        while step < steps:
            if stop_after is not None and step - start_step >= stop_after:
                break
            batch = get_batch(step).to(device)
            inputs, targets = batch[:, :-1], batch[:, 1:]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, lr=lr, steps=steps, warmup=warmup)
            logits = model(inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            step += 1
            tokens += int((inputs != pad_id).sum())
            window.append(loss.item())
            entry: dict[str, Any] = {}
            if step % log_every == 0 or step == steps:
                entry.update(step=step, loss=sum(window) / len(window), lr=opt.param_groups[0]["lr"])
                window = []
                bar.set_postfix(loss=f"{entry['loss']:.3f}")
            if eval_fn is not None and (step % eval_every == 0 or step == steps):
                entry.update(step=step, **evaluate(step))
            if entry:
                log_history.append(entry)
            if ckpt_dir is not None and (step % checkpoint_every == 0 or step == steps):
                save(step)
            bar.update(1)
    seconds = time.perf_counter() - t0
    bar.close()
    model.eval()
    losses = [e["loss"] for e in log_history if "loss" in e]
    final_loss = losses[-1] if losses else (sum(window) / len(window) if window else float("nan"))
    return TrainReport(
        method="tiny", name=f"tiny-{model.num_parameters() / 1e6:.1f}M", steps=step - start_step, global_step=step,
        seconds=seconds, tokens=tokens, peak_memory_mb=mem.peak_mb, memory_kind=mem.kind, final_loss=final_loss,
        log_history=log_history,
        eval_metrics=dict(last_eval),
        resumed_from=resumed_from, output_dir=str(ckpt_dir) if ckpt_dir else None, device=str(device),
        setup_seconds=setup_seconds, info={"parameters": model.num_parameters(), **settings},
        model=model, tokenizer=tokenizer)


# --------------------------------------------------------------------------- using a trained model
@torch.no_grad()
def generate(model: TinyLM, tok: CharTokenizer, prompts: Sequence[str], max_new_tokens: int = 32,
             temperature: float = 0.0, seed: int | None = 0, stop_at_eos: bool = True) -> list[str]:
    """Continue each prompt (``<bos> prompt``) by up to ``max_new_tokens`` characters; returns the new text.

    The prompts go through the model together, left-padded. ``temperature=0`` is greedy
    (the same output every time); above 0 it samples from ``softmax(logits / temperature)`` with
    a generator seeded by ``seed``. A row stops at ``<eos>`` (not included in its text); the
    context is cut to the model's ``max_len`` newest tokens.
    """
    if not prompts:
        return []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = [tok.encode(p, bos=True) for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tok.pad_id] * (width - len(r)) + r for r in rows], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)
    new: list[list[int]] = [[] for _ in rows]
    for _ in range(max_new_tokens):
        ctx, ctx_mask = ids[:, -model.cfg.max_len:], mask[:, -model.cfg.max_len:]
        logits = model(ctx, ctx_mask)[:, -1].float()
        if temperature > 0:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g).squeeze(1)
        else:
            nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, tok.pad_id), nxt)
        for r, t in enumerate(nxt.tolist()):
            if not done[r] and not (stop_at_eos and t == tok.eos_id):
                new[r].append(t)
        if stop_at_eos:
            done |= nxt == tok.eos_id
        ids = torch.cat([ids, nxt[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if done.all():
            break
    model.train(was_training)
    return [tok.decode(r) for r in new]


@torch.no_grad()
def perplexity(model: TinyLM, tok: CharTokenizer, texts: Sequence[str], batch_size: int = 64) -> list[float]:
    """Perplexity of each text: ``exp`` of the mean negative log-likelihood of its characters and ``<eos>``,
    each predicted from ``<bos>`` and the characters before it. Texts longer than the model's
    ``max_len`` are scored on their first ``max_len + 1`` tokens."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(texts), batch_size):
        rows = [tok.encode(t, bos=True, eos=True)[:model.cfg.max_len + 1] for t in texts[start:start + batch_size]]
        batch = _pad(rows, tok.pad_id).to(device)
        logits = model(batch[:, :-1])
        nll = F.cross_entropy(logits.transpose(1, 2).float(), batch[:, 1:], ignore_index=tok.pad_id, reduction="none")
        real = (batch[:, 1:] != tok.pad_id).float()
        out += torch.exp((nll * real).sum(1) / real.sum(1)).tolist()
    model.train(was_training)
    return out
