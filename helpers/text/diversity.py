"""Diversity metrics for a set of generated texts."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from helpers.core.textutil import words
from helpers.lm.embeddings import cosine_matrix, mean_pairwise_cosine


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams / all n-grams across the set.

    1.0 means no n-gram repeats anywhere; values near 0 mean the texts repeat each other
    (or themselves). Returns ``nan`` when the texts hold no n-gram at all.
    """
    grams: list[tuple[str, ...]] = []
    for t in texts:
        w = words(t)
        grams.extend(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    return len(set(grams)) / len(grams) if grams else float("nan")


def near_duplicate_rate(embeddings: np.ndarray, threshold: float = 0.9) -> float:
    """Share of items whose nearest *other* item has cosine similarity >= ``threshold``."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    sims = cosine_matrix(embeddings)
    np.fill_diagonal(sims, -1.0)
    return float((sims.max(1) >= threshold).mean())


def diversity_report(texts: Sequence[str], embeddings: np.ndarray, threshold: float = 0.9) -> dict[str, float]:
    """distinct-1, distinct-2, mean pairwise cosine, and near-duplicate rate in one dict."""
    return {
        "n": float(len(texts)),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_pairwise_cosine": mean_pairwise_cosine(embeddings),
        "near_dup_rate": near_duplicate_rate(embeddings, threshold),
    }
