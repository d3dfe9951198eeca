"""Batched sentence embeddings (bundled all-MiniLM-L6-v2 by default) and cosine helpers.

>>> emb = Embedder.load()                 # "minilm", a hub id or a local folder
>>> X = emb.encode(["a cat", "a kitten", "tax law"])   # (3, 384), unit length
>>> cosine_matrix(X, X)
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch


class Embedder:
    """Mean-pooled transformer sentence embeddings, L2-normalised.

    Gives the same vectors as ``sentence_transformers.SentenceTransformer`` for
    all-MiniLM-L6-v2, without that dependency.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "minilm", max_length: int = 256) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.last_seconds = 0.0
        self.last_missing: list[int] = []  # positions of missing (None/NaN) texts in the last encode() call

    @classmethod
    def load(cls, name: str = "minilm", device: str | None = None, max_length: int = 256) -> "Embedder":
        """Load a bundled short name (``"minilm"``), a hub id or a local folder."""
        from transformers import AutoModel, AutoTokenizer

        from helpers.core.env import pick_device
        from helpers.core.models import REGISTRY, locate, quiet_loading

        source = str(locate(name)) if name in REGISTRY else name
        if name in REGISTRY and REGISTRY[name].kind != "embedding":
            raise ValueError(f"{name!r} is a {REGISTRY[name].kind} model, not an embedding model")
        device = device or pick_device()
        with quiet_loading():
            tok = AutoTokenizer.from_pretrained(source)
            model = AutoModel.from_pretrained(source).to(device).eval()
        return cls(model, tok, name, max_length)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False,
               normalize: bool = True) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), dim)`` float32 array (rows unit length).

        Texts are sorted by length before batching (less padding); empty strings get the
        embedding of the empty input rather than an error. Missing values (``None`` or a float
        NaN, as pandas gives for an empty cell) are not turned into the words "None" or "nan":
        their rows are all zeros (cosine 0 with everything, so dedup never matches them), their
        positions are listed in :attr:`last_missing` and a warning says how many there were.
        Any other non-string (a number, bytes, a list) raises ``TypeError``.
        """
        import warnings

        from tqdm.auto import tqdm

        texts = list(texts)
        missing = [i for i, t in enumerate(texts) if t is None or (isinstance(t, float) and t != t)]
        missing_set = set(missing)
        wrong = [i for i, t in enumerate(texts) if not isinstance(t, str) and i not in missing_set]
        if wrong:
            raise TypeError(f"Embedder.encode takes strings; {len(wrong)} items are not (first at index {wrong[0]}: "
                            f"{type(texts[wrong[0]]).__name__} {texts[wrong[0]]!r:.40})")
        self.last_missing = missing
        if missing:
            warnings.warn(f"{len(missing)} of {len(texts)} texts are missing (None/NaN): their embeddings are zero rows "
                          f"(positions in Embedder.last_missing)", stacklevel=2)
        live = np.setdiff1d(np.arange(len(texts)), np.asarray(missing, dtype=np.int64))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = live[np.argsort([-len(texts[i]) for i in live], kind="stable")]
        device = next(self.model.parameters()).device
        t0 = time.perf_counter()
        for start in tqdm(range(0, len(order), batch_size), disable=not progress, leave=False, desc="embed"):
            idx = order[start:start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(device)
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                vec = torch.nn.functional.normalize(vec, dim=-1)
            out[idx] = vec.float().cpu().numpy()
        self.last_seconds = time.perf_counter() - t0
        return out


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """All-pairs cosine similarity between rows of ``a`` and rows of ``b`` (default ``a``)."""
    a = normalize_rows(a)
    b = a if b is None else normalize_rows(b)
    return a @ b.T


def mean_pairwise_cosine(x: np.ndarray, max_items: int = 4000, seed: int = 0) -> float:
    """Mean cosine similarity over all distinct pairs (lower = more spread out = more diverse).

    Uses the identity ``sum_ij x_i.x_j = |sum_i x_i|^2`` so it costs O(n d), not O(n^2 d);
    ``max_items`` is kept for API stability but no sampling is needed.
    """
    x = normalize_rows(x)
    n = len(x)
    if n < 2:
        return float("nan")
    s = x.sum(0)
    total = float(s @ s) - float((x * x).sum())
    return total / (n * (n - 1))
