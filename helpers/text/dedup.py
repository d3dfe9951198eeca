"""Deduplication: exact (after normalisation), MinHash LSH, and embedding (cosine) dedup.

All three methods return a :class:`DedupResult` that keeps **exactly one representative per
group** of duplicates, so a duplicate pair never loses both members.

>>> r = exact_dedup(["Hello  world", "hello world!", "other"])
>>> r.keep.tolist()
[True, False, True]

Sources the methods follow:

* exact dedup after normalisation and MinHash LSH near-dedup: Broder (1997), *Mining of Massive
  Datasets* ch. 3 (banding: a pair with Jaccard ``s`` becomes a candidate with probability
  ``1 - (1 - s**r)**b``), Llama 3 and datatrove pipelines;
* embedding dedup with a cosine threshold after clustering: SemDeDup (Abbas et al. 2023).

The scalable embedding search (:func:`similar_pairs_clustered`) clusters the vectors with
spherical k-means, then compares each vector only with the members of its ``n_probe``
nearest clusters, using blocked matrix products (never a Python loop over pairs).

For evaluation, :func:`plant_near_duplicates` makes edited copies of real texts (case and
whitespace edits, word swaps, synonym swaps, typos) with ground-truth group ids, and can add
copies written elsewhere, such as real paraphrases by a language model
(:func:`helpers.text.paraphrase.paraphrase_texts`); :func:`pair_precision_recall` / :func:`sweep_thresholds` score any
method against them. :func:`template_requests` gives the hard negatives: requests that share a
template but ask for different things (``data/dedup_templates.json``), which a good method must
keep apart; :func:`share_merged` measures how many of those pairs a grouping merges.
"""
from __future__ import annotations

import random
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "DedupResult", "normalize_text", "exact_dedup", "shingles", "minhash_signatures",
    "s_curve", "lsh_params", "minhash_candidate_pairs", "minhash_dedup", "similar_pairs_exact",
    "similar_pairs_clustered", "embedding_dedup", "connected_labels", "keep_one_per_group",
    "greedy_keep", "Planted", "plant_near_duplicates", "EDIT_KINDS", "pair_precision_recall",
    "pairs_precision_recall", "group_outcome", "sweep_thresholds", "clustered_embeddings",
    "pair_recall", "jaccard_pairs", "band_collisions", "copy_recall_by_kind", "spherical_kmeans",
    "template_requests", "sibling_pairs", "share_merged",
]


# --------------------------------------------------------------------------------------
# results and grouping
# --------------------------------------------------------------------------------------
@dataclass
class DedupResult:
    """Outcome of one dedup run.

    Attributes:
        method: ``"exact"``, ``"minhash"`` or ``"embedding"``.
        keep: boolean mask, ``True`` for the rows to keep (one per group).
        labels: group id per row (rows with the same label were judged duplicates).
        pairs: ``(m, 2)`` int array of the duplicate pairs found (``i < j``).
        scores: similarity of each pair (1.0 for exact matches).
        seconds: wall time of the run.
        stats: method-specific counts (empty texts, candidates checked, ...).
    """

    method: str
    keep: np.ndarray
    labels: np.ndarray
    pairs: np.ndarray
    scores: np.ndarray
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(len(self.keep))

    @property
    def n_removed(self) -> int:
        return int((~self.keep).sum())

    @property
    def kept_indices(self) -> np.ndarray:
        return np.flatnonzero(self.keep)

    @property
    def removed_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.keep)

    def groups(self, min_size: int = 2) -> list[np.ndarray]:
        """Row indices of each group with at least ``min_size`` members, largest first."""
        order = np.argsort(self.labels, kind="stable")
        lab = self.labels[order]
        cuts = np.flatnonzero(np.diff(lab)) + 1
        out = [g for g in np.split(order, cuts) if len(g) >= min_size]
        return sorted(out, key=len, reverse=True)

    def summary(self) -> dict:
        """Counts in one flat dict (handy for a results table)."""
        d = {"method": self.method, "rows": self.n, "kept": int(self.keep.sum()),
             "removed": self.n_removed, "pairs": int(len(self.pairs)),
             "seconds": round(self.seconds, 3)}
        d.update(self.stats)
        return d


def connected_labels(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of the graph with ``n`` nodes and edges ``pairs`` (a label per node)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    g = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return labels.astype(np.int64)


def keep_one_per_group(labels: np.ndarray, priority: np.ndarray | None = None) -> np.ndarray:
    """Mask keeping exactly one row per label: the highest ``priority`` (ties: lowest index).

    Without ``priority`` the first row of each group is kept, so the result does not depend on
    which member a search happened to find first.
    """
    labels = np.asarray(labels)
    n = len(labels)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    pr = np.zeros(n) if priority is None else -np.asarray(priority, dtype=float)
    # sort by label, then by -priority, then by index: the first row of each label run wins
    order = np.lexsort((np.arange(n), pr, labels))
    first = np.ones(n, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    keep[order[first]] = True
    return keep


def greedy_keep(n: int, pairs: np.ndarray, priority: np.ndarray | None = None) -> np.ndarray:
    """Greedy keep-first: walk rows by priority; keep a row unless a kept row is its duplicate.

    Unlike :func:`keep_one_per_group` (one row per connected component, which can remove
    rows that are far apart through a chain A~B~C), no two kept rows are duplicates of each
    other and every removed row has a kept duplicate.
    """
    from scipy.sparse import coo_matrix

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    g = coo_matrix((np.ones(2 * len(pairs), dtype=np.int8),
                    (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                   shape=(n, n)).tocsr()
    order = np.arange(n) if priority is None else np.lexsort((np.arange(n), -np.asarray(priority, float)))
    has_edge = np.diff(g.indptr) > 0
    removed = np.zeros(n, dtype=bool)
    indptr, indices = g.indptr, g.indices
    for i in order:
        if removed[i]:
            continue
        keep[i] = True
        if has_edge[i]:
            removed[indices[indptr[i]:indptr[i + 1]]] = True
    return keep


def _finish(method: str, n: int, pairs: np.ndarray, scores: np.ndarray, t0: float,
            priority: np.ndarray | None, keep_mode: str, stats: dict) -> DedupResult:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    labels = connected_labels(n, pairs)
    if keep_mode == "components":
        keep = keep_one_per_group(labels, priority)
    elif keep_mode == "greedy":
        keep = greedy_keep(n, pairs, priority)
    else:
        raise ValueError(f"keep must be 'components' or 'greedy', not {keep_mode!r}")
    return DedupResult(method, keep, labels, pairs, np.asarray(scores, dtype=np.float32),
                       time.perf_counter() - t0, stats)


# --------------------------------------------------------------------------------------
# exact dedup
# --------------------------------------------------------------------------------------
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+", re.UNICODE)


def normalize_text(text: object, *, lowercase: bool = True, strip_punctuation: bool = True,
                   collapse_whitespace: bool = True, unicode_form: str | None = "NFKC") -> str:
    """Canonical form used before exact matching and shingling.

    NFKC unicode folding, lower case, punctuation removed, runs of whitespace collapsed to one
    space, ends stripped. ``None`` and non-strings become ``""`` / ``str(x)``.
    """
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if unicode_form:
        s = unicodedata.normalize(unicode_form, s)
    if lowercase:
        s = s.lower()
    if strip_punctuation:
        s = _PUNCT.sub(" ", s)
    if collapse_whitespace:
        s = _SPACE.sub(" ", s)
    return s.strip()


def exact_dedup(texts: Sequence[object], *, normalize: bool = True, priority: np.ndarray | None = None,
                **normalize_kwargs) -> DedupResult:
    """Exact dedup, after :func:`normalize_text` unless ``normalize=False``.

    Empty texts (after normalisation) form their own group, so all but one are removed, and
    their count is reported in ``stats["empty"]``.
    """
    t0 = time.perf_counter()
    keys = [normalize_text(t, **normalize_kwargs) if normalize else ("" if t is None else str(t))
            for t in texts]
    n = len(keys)
    first: dict[str, int] = {}
    rows, cols = [], []
    for i, k in enumerate(keys):
        j = first.setdefault(k, i)
        if j != i:
            rows.append(j)
            cols.append(i)
    pairs = np.stack([np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)], 1) \
        if rows else np.zeros((0, 2), dtype=np.int64)
    stats = {"empty": sum(1 for k in keys if not k), "distinct_keys": len(first)}
    return _finish("exact", n, pairs, np.ones(len(pairs)), t0, priority, "components", stats)


# --------------------------------------------------------------------------------------
# MinHash LSH
# --------------------------------------------------------------------------------------
def shingles(text: object, k: int = 5, unit: str = "char", normalize: bool = True) -> set[str]:
    """The set of ``k``-shingles of a text (character or word n-grams) after normalisation.

    Texts shorter than ``k`` units give one shingle (the whole text); empty texts give an
    empty set.
    """
    s = normalize_text(text) if normalize else ("" if text is None else str(text))
    if not s:
        return set()
    if unit == "char":
        if len(s) <= k:
            return {s}
        return {s[i:i + k] for i in range(len(s) - k + 1)}
    if unit == "word":
        w = s.split()
        if len(w) <= k:
            return {" ".join(w)}
        return {" ".join(w[i:i + k]) for i in range(len(w) - k + 1)}
    raise ValueError(f"unit must be 'char' or 'word', not {unit!r}")


def minhash_signatures(texts: Sequence[object], num_perm: int = 128, k: int = 5, unit: str = "char",
                       seed: int = 1, max_chars: int = 20000) -> tuple[list, np.ndarray]:
    """MinHash sketches (``datasketch.MinHash``) for each text, plus a mask of empty texts.

    Very long texts are cut to ``max_chars`` characters before shingling (near-duplicates of
    long documents share their beginning; :func:`minhash_dedup` reports how many were cut in
    ``stats["truncated"]``). Returns ``(minhashes, empty_mask)``; empty texts get an empty
    MinHash and are never matched.
    """
    from datasketch import MinHash

    sets = [shingles(("" if t is None else str(t))[:max_chars], k, unit) for t in texts]
    empty = np.array([len(s) == 0 for s in sets], dtype=bool)
    mhs = MinHash.bulk(([x.encode("utf-8") for x in s] for s in sets), num_perm=num_perm, seed=seed)
    return mhs, empty


def s_curve(s: np.ndarray | float, bands: int, rows: int) -> np.ndarray | float:
    """Probability that a pair with Jaccard similarity ``s`` becomes an LSH candidate.

    ``P(candidate) = 1 - (1 - s**rows)**bands``: the pair must agree on all ``rows`` minhash
    values of at least one of the ``bands`` bands. The steep part sits near
    ``(1/bands)**(1/rows)``.
    """
    s = np.asarray(s, dtype=float)
    out = 1.0 - (1.0 - s ** rows) ** bands
    return float(out) if out.ndim == 0 else out


def lsh_params(threshold: float, num_perm: int = 128,
               weights: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int]:
    """``(bands, rows)`` that datasketch's ``MinHashLSH`` picks for a Jaccard ``threshold``."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    return int(lsh.b), int(lsh.r)


def minhash_candidate_pairs(minhashes: Sequence, empty: np.ndarray | None = None, *,
                            params: tuple[int, int] | None = None, threshold: float = 0.7,
                            num_perm: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs from a ``datasketch.MinHashLSH`` index, with their estimated Jaccard.

    Every non-empty sketch is inserted, then queried; each unordered pair is reported once
    (``i < j``) with the fraction of agreeing minhash values (an unbiased Jaccard estimate).
    """
    from datasketch import MinHashLSH

    n = len(minhashes)
    if n == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    num_perm = num_perm or len(minhashes[0])
    empty = np.zeros(n, dtype=bool) if empty is None else np.asarray(empty, dtype=bool)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, params=params)
    live = np.flatnonzero(~empty)
    with lsh.insertion_session() as session:
        for i in live:
            session.insert(int(i), minhashes[i], check_duplication=False)
    rows, cols = [], []
    for i in live:
        for j in lsh.query(minhashes[i]):
            if j > i:
                rows.append(int(i))
                cols.append(j)
    if not rows:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    pairs = np.stack([np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)], 1)
    sig = np.stack([m.hashvalues for m in minhashes])
    est = (sig[pairs[:, 0]] == sig[pairs[:, 1]]).mean(1).astype(np.float32)
    return pairs, est


def jaccard_pairs(texts: Sequence[object], pairs: np.ndarray, k: int = 5, unit: str = "char") -> np.ndarray:
    """True Jaccard similarity of the ``k``-shingle sets of each pair (0 when both are empty)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    cache: dict[int, set[str]] = {}
    out = np.zeros(len(pairs), dtype=np.float32)
    for m, (i, j) in enumerate(pairs):
        a = cache.setdefault(int(i), shingles(texts[i], k, unit))
        b = cache.setdefault(int(j), shingles(texts[j], k, unit))
        union = len(a | b)
        out[m] = len(a & b) / union if union else 0.0
    return out


def band_collisions(minhashes: Sequence, pairs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """For each pair, whether its MinHash signatures agree on every row of at least one band.

    This is exactly the LSH candidate rule, evaluated directly on the signatures, so the
    measured collision rate can be compared with :func:`s_curve`.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    sig = np.stack([m.hashvalues for m in minhashes])[:, :bands * rows]
    eq = (sig[pairs[:, 0]] == sig[pairs[:, 1]]).reshape(len(pairs), bands, rows)
    return eq.all(2).any(1)


def minhash_dedup(texts: Sequence[object], threshold: float = 0.7, *, num_perm: int = 128, k: int = 5,
                  unit: str = "char", params: tuple[int, int] | None = None, verify: bool = True,
                  seed: int = 1, priority: np.ndarray | None = None, keep: str = "components",
                  minhashes: tuple[list, np.ndarray] | None = None, max_chars: int = 20000) -> DedupResult:
    """Near-dedup with MinHash LSH on ``k``-shingles.

    ``params=(bands, rows)`` overrides datasketch's choice for ``threshold``. With ``verify``
    (default) a candidate pair counts only if its estimated Jaccard is ``>= threshold``;
    without it every LSH collision counts. Pass precomputed ``minhashes`` (from
    :func:`minhash_signatures`) to sweep thresholds without re-hashing. Empty texts are never
    matched by MinHash (use :func:`exact_dedup` for those); they are counted in
    ``stats["empty"]``.
    """
    t0 = time.perf_counter()
    mhs, empty = minhashes if minhashes is not None else minhash_signatures(texts, num_perm, k, unit, seed, max_chars)
    b, r = params or lsh_params(threshold, len(mhs[0]) if len(mhs) else num_perm)
    pairs, est = minhash_candidate_pairs(mhs, empty, params=(b, r), num_perm=len(mhs[0]) if len(mhs) else num_perm)
    n_cand = len(pairs)
    if verify and len(pairs):
        ok = est >= threshold
        pairs, est = pairs[ok], est[ok]
    stats = {"bands": b, "rows": r, "candidates": n_cand, "empty": int(empty.sum()),
             "truncated": sum(1 for t in texts if t is not None and len(str(t)) > max_chars)}
    return _finish("minhash", len(mhs), pairs, est, t0, priority, keep, stats)


# --------------------------------------------------------------------------------------
# embedding dedup
# --------------------------------------------------------------------------------------
def _as_unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] < 1e-12)
    x = x / np.maximum(norms, 1e-12)
    if bad.any():
        x[bad] = 0.0  # zero or NaN rows match nothing
    return x


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` through torch (faster multi-threaded GEMM than NumPy's default BLAS here)."""
    try:
        import torch

        return (torch.from_numpy(a) @ torch.from_numpy(b).T).numpy()
    except ImportError:  # pragma: no cover
        return a @ b.T


def _pairs_in_block(s: np.ndarray, threshold: float, row_ids: np.ndarray, col_ids: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, c = np.nonzero(s >= threshold)
    return row_ids[r], col_ids[c], s[r, c]


def _unique_pairs(i: np.ndarray, j: np.ndarray, sim: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    ok = lo != hi
    lo, hi, sim = lo[ok], hi[ok], sim[ok]
    key = lo * n + hi
    key, first = np.unique(key, return_index=True)
    pairs = np.stack([key // n, key % n], 1) if len(key) else np.zeros((0, 2), dtype=np.int64)
    return pairs, sim[first].astype(np.float32)


def similar_pairs_exact(emb: np.ndarray, threshold: float = 0.9, block: int = 4096,
                        other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All pairs with cosine ``>= threshold`` by exact blocked search (``i < j``).

    Cost is ``n**2 * d / 2`` multiply-adds in ``block x block`` matrix products; memory stays
    ``block**2`` floats. With ``other`` given, ``emb`` are queries and ``other`` the corpus,
    and pairs are ``(query_index, corpus_index)`` (used to check recall on a sample).
    """
    x = _as_unit(emb)
    n = len(x)
    out_i, out_j, out_s = [], [], []
    if other is not None:
        y = _as_unit(other)
        for a in range(0, n, block):
            for b in range(0, len(y), block * 4):
                s = _mm(x[a:a + block], y[b:b + block * 4])
                i, j, v = _pairs_in_block(s, threshold, np.arange(a, a + len(s)), np.arange(b, b + s.shape[1]))
                out_i.append(i); out_j.append(j); out_s.append(v)
        if not out_i:
            return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
        return (np.stack([np.concatenate(out_i), np.concatenate(out_j)], 1).astype(np.int64),
                np.concatenate(out_s).astype(np.float32))
    for a in range(0, n, block):
        for b in range(a, n, block):
            s = _mm(x[a:a + block], x[b:b + block])
            if a == b:
                s = np.triu(s, 1) if threshold > 0 else np.where(np.triu(np.ones_like(s, bool), 1), s, -np.inf)
            i, j, v = _pairs_in_block(s, threshold, np.arange(a, a + s.shape[0]), np.arange(b, b + s.shape[1]))
            out_i.append(i); out_j.append(j); out_s.append(v)
    if not out_i:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return _unique_pairs(np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s), n)


def spherical_kmeans(x: np.ndarray, k: int, iters: int = 10, sample: int | None = 100_000,
                     seed: int = 0, block: int = 16384) -> np.ndarray:
    """Unit-norm centroids of ``k`` clusters (k-means on cosine), trained on a random sample."""
    rng = np.random.default_rng(seed)
    n = len(x)
    k = max(1, min(k, n))
    train = x if sample is None or n <= sample else x[rng.choice(n, sample, replace=False)]
    cent = train[rng.choice(len(train), k, replace=False)].copy()
    for _ in range(iters):
        assign = _top_clusters(train, cent, 1, block)[:, 0]
        sums = np.zeros_like(cent)
        np.add.at(sums, assign, train)
        counts = np.bincount(assign, minlength=k)
        empty = counts == 0
        if empty.any():  # re-seed empty clusters with random points
            sums[empty] = train[rng.choice(len(train), int(empty.sum()), replace=False)]
        cent = _as_unit(sums)
    return cent


def _top_clusters(x: np.ndarray, cent: np.ndarray, p: int, block: int = 16384) -> np.ndarray:
    """Indices of the ``p`` most similar centroids for every row (blocked)."""
    p = min(p, len(cent))
    out = np.empty((len(x), p), dtype=np.int64)
    for a in range(0, len(x), block):
        s = _mm(x[a:a + block], cent)
        if p == 1:
            out[a:a + block, 0] = s.argmax(1)
        else:
            part = np.argpartition(-s, p - 1, axis=1)[:, :p]
            order = np.take_along_axis(-s, part, 1).argsort(1)
            out[a:a + block] = np.take_along_axis(part, order, 1)
    return out


def similar_pairs_clustered(emb: np.ndarray, threshold: float = 0.9, *, n_clusters: int | None = None,
                            n_probe: int = 3, kmeans_iters: int = 8, kmeans_sample: int = 50_000,
                            seed: int = 0, max_block: int = 1 << 23, return_stats: bool = False):
    """Pairs with cosine ``>= threshold`` found by clustering first (SemDeDup-style IVF search).

    1. spherical k-means (``n_clusters``, default ``~sqrt(n)``) on a sample of ``kmeans_sample``;
    2. every vector goes to its nearest centroid (its *home* cluster);
    3. every vector is compared, by a blocked matrix product, with the members of its
       ``n_probe`` nearest clusters. A pair is found when either vector probes the other's home.

    Cost is about ``n * n_probe * n / n_clusters * d`` instead of ``n**2 * d / 2``. The pairs
    are a subset of :func:`similar_pairs_exact`'s (no false positives); what it can miss is a
    pair split across clusters that neither side probes, which :func:`pair_recall` measures.
    """
    t0 = time.perf_counter()
    x = _as_unit(emb)
    n = len(x)
    if n < 2:
        empty = (np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32))
        return (*empty, {}) if return_stats else empty
    k = n_clusters or max(1, int(round(np.sqrt(n))))
    k = min(k, n)
    cent = spherical_kmeans(x, k, kmeans_iters, kmeans_sample, seed)
    t_km = time.perf_counter() - t0
    probes = _top_clusters(x, cent, n_probe)           # (n, p); column 0 is the home cluster
    home = probes[:, 0]
    # members of each home cluster
    order = np.argsort(home, kind="stable")
    bounds = np.searchsorted(home[order], np.arange(k + 1))
    # which vectors probe each cluster (query lists)
    q_pt = np.repeat(np.arange(n), probes.shape[1])
    q_cl = probes.ravel()
    q_order = np.argsort(q_cl, kind="stable")
    q_pt, q_cl = q_pt[q_order], q_cl[q_order]
    q_bounds = np.searchsorted(q_cl, np.arange(k + 1))
    out_i, out_j, out_s = [], [], []
    comparisons = 0
    for c in range(k):
        members = order[bounds[c]:bounds[c + 1]]
        queries = q_pt[q_bounds[c]:q_bounds[c + 1]]
        if len(members) == 0 or len(queries) == 0:
            continue
        xm = x[members]
        step = max(1, max_block // max(1, len(members)))
        for a in range(0, len(queries), step):
            qs = queries[a:a + step]
            s = _mm(x[qs], xm)
            comparisons += s.size
            i, j, v = _pairs_in_block(s, threshold, qs, members)
            if len(i):
                out_i.append(i); out_j.append(j); out_s.append(v)
    if out_i:
        pairs, sims = _unique_pairs(np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s), n)
    else:
        pairs, sims = np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    if not return_stats:
        return pairs, sims
    sizes = np.diff(bounds)
    stats = {"clusters": k, "n_probe": int(probes.shape[1]), "kmeans_seconds": round(t_km, 3),
             "largest_cluster": int(sizes.max()), "comparisons": int(comparisons),
             "comparison_fraction": comparisons / max(1, n * (n - 1) / 2)}
    return pairs, sims, stats


def embedding_dedup(emb: np.ndarray, threshold: float = 0.9, *, search: str = "auto",
                    exact_max: int = 20_000, priority: np.ndarray | None = None, keep: str = "components",
                    **cluster_kwargs) -> DedupResult:
    """Embedding dedup: rows with cosine ``>= threshold`` are duplicates; keep one per group.

    ``search="exact"`` uses blocked all-pairs products, ``"clustered"`` the k-means search of
    :func:`similar_pairs_clustered`; ``"auto"`` picks exact up to ``exact_max`` rows.
    ``keep="components"`` keeps exactly one row per connected group (SemDeDup);
    ``keep="greedy"`` keeps a row unless an earlier kept row is its duplicate (see
    :func:`greedy_keep`). ``priority`` (higher wins) picks which row of a group survives,
    e.g. a quality score; by default the earliest row does. Zero or non-finite rows are
    counted in ``stats["bad_rows"]`` and never matched.
    """
    t0 = time.perf_counter()
    x = np.asarray(emb, dtype=np.float32)
    n = len(x)
    if search == "auto":
        search = "exact" if n <= exact_max else "clustered"
    stats: dict = {"search": search,
                   "bad_rows": int((~np.isfinite(x).all(1) | (np.abs(x).sum(1) == 0)).sum()) if n else 0}
    if search == "exact":
        pairs, sims = similar_pairs_exact(x, threshold)
    elif search == "clustered":
        pairs, sims, st = similar_pairs_clustered(x, threshold, return_stats=True, **cluster_kwargs)
        stats.update(st)
    else:
        raise ValueError(f"search must be 'auto', 'exact' or 'clustered', not {search!r}")
    return _finish("embedding", n, pairs, sims, t0, priority, keep, stats)


# --------------------------------------------------------------------------------------
# planted near-duplicates
# --------------------------------------------------------------------------------------
#: Edit kinds :func:`plant_near_duplicates` can apply by rule. ``synonyms`` swaps words from a
#: small synonym list and may add a polite prefix or a "Thanks!": a surface rewrite that keeps
#: most of the wording, not a paraphrase (real paraphrases come from a model, see
#: :func:`helpers.text.paraphrase.paraphrase_texts`, and are added with ``extra=``).
EDIT_KINDS = ("case", "whitespace", "punctuation", "word_swap", "typo", "synonyms")

_SYNONYMS = {
    "write": "compose", "explain": "describe", "create": "make", "give": "provide", "show": "demonstrate",
    "help": "assist", "make": "create", "list": "enumerate", "tell": "inform", "use": "utilize",
    "find": "locate", "good": "great", "big": "large", "small": "little", "simple": "basic",
    "quick": "fast", "best": "top", "important": "key", "example": "sample", "examples": "samples",
    "article": "piece", "story": "tale", "code": "program", "function": "routine", "question": "query",
    "answer": "reply", "describe": "explain", "summarize": "sum up", "provide": "give",
    "improve": "enhance", "different": "various", "ideas": "suggestions", "idea": "suggestion",
    "start": "begin", "need": "require", "want": "would like", "about": "regarding", "how": "how exactly",
    "please": "kindly", "generate": "produce", "short": "brief", "detailed": "thorough",
}
_PREFIXES = ("Please ", "Can you ", "Could you please ", "I need you to ", "Hey, ")
_SUFFIXES = (" Thanks!", " Please.", " Thank you.", " Be concise.")


def _edit_case(t: str, rng: random.Random) -> str:
    choice = rng.randrange(3)
    if choice == 0:
        return t.lower()
    if choice == 1:
        return t.upper()
    return " ".join(w.capitalize() for w in t.split(" "))


def _edit_whitespace(t: str, rng: random.Random) -> str:
    words = t.split()
    seps = [rng.choice([" ", "  ", "\n", " \t", "   "]) for _ in range(max(0, len(words) - 1))]
    out = words[0] if words else ""
    for s, w in zip(seps, words[1:]):
        out += s + w
    return rng.choice(["", " ", "\n"]) + out + rng.choice(["", " ", "\n\n"])


def _edit_punct(t: str, rng: random.Random) -> str:
    t = re.sub(r"[.!?]+\s*$", "", t.rstrip())
    return t + rng.choice(["", "?", "!", "...", " ?"]) if rng.random() < 0.7 else t.replace(",", "")


def _edit_swap(t: str, rng: random.Random) -> str:
    words = t.split(" ")
    if len(words) < 3:
        return t + " " + rng.choice(["now", "please"])
    for _ in range(max(1, len(words) // 12)):
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _edit_typo(t: str, rng: random.Random) -> str:
    chars = list(t)
    letters = [i for i, c in enumerate(chars) if c.isalpha()]
    for _ in range(max(1, len(letters) // 40)):
        if not letters:
            break
        i = rng.choice(letters)
        op = rng.randrange(3)
        if op == 0:
            chars[i] = ""
        elif op == 1:
            chars[i] = chars[i] * 2
        else:
            chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
    return "".join(chars)


def _edit_synonyms(t: str, rng: random.Random) -> str:
    words = t.split(" ")
    changed = 0
    for i, w in enumerate(words):
        core = w.strip(".,!?:;").lower()
        if core in _SYNONYMS and rng.random() < 0.6:
            rep = _SYNONYMS[core]
            if w[:1].isupper():
                rep = rep[:1].upper() + rep[1:]
            words[i] = w.lower().replace(core, rep) if w.lower().startswith(core) else rep
            changed += 1
    out = " ".join(words)
    if rng.random() < 0.5 or not changed:
        p = rng.choice(_PREFIXES)
        out = p + (out[:1].lower() + out[1:] if out else out)
    if rng.random() < 0.4:
        out = out + rng.choice(_SUFFIXES)
    return out


_EDITS = {"case": _edit_case, "whitespace": _edit_whitespace, "punctuation": _edit_punct,
          "word_swap": _edit_swap, "typo": _edit_typo, "synonyms": _edit_synonyms}


@dataclass
class Planted:
    """Texts with planted near-duplicates and their ground truth.

    Attributes:
        texts: originals followed by the planted copies (shuffled if asked).
        group: ground-truth group id per text (a copy shares its original's id; every
            original without copies has its own id).
        kind: ``"original"`` or the edit(s) applied, e.g. ``"case+typo"``, or the ``extra_kind``
            of a copy passed in with ``extra`` (e.g. ``"paraphrase"``).
        source: index in ``texts`` of the original each row was made from (itself for originals).
        skipped: extra copies that were not added, by reason (empty, out of range, same as the original).
    """

    texts: list[str]
    group: np.ndarray
    kind: list[str]
    source: np.ndarray
    skipped: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_planted(self) -> int:
        return sum(k != "original" for k in self.kind)

    def rows(self) -> list[dict]:
        """One dict per text (for tables and ``datasets.Dataset.from_list``)."""
        return [{"text": t, "group": int(g), "kind": k, "source": int(s)}
                for t, g, k, s in zip(self.texts, self.group, self.kind, self.source)]


def plant_near_duplicates(texts: Sequence[str], n_sources: int, *, copies: int | tuple[int, int] = (1, 3),
                          kinds: Iterable[str] = EDIT_KINDS, max_edits: int = 2, seed: int = 0,
                          shuffle: bool = True, extra: "dict[int, Sequence[str | None]] | None" = None,
                          extra_kind: str = "paraphrase") -> Planted:
    """Make edited copies of ``n_sources`` randomly chosen texts, with ground-truth groups.

    Each copy gets 1 to ``max_edits`` edits drawn from ``kinds`` (case, whitespace,
    punctuation, word swaps, typos, synonym swaps). ``copies`` is a number or an inclusive
    ``(low, high)`` range per source. Empty or whitespace-only texts are never chosen as
    sources (they are kept as originals).

    ``extra`` adds copies made elsewhere: ``{index of an original in texts: [copy, ...]}``,
    labelled ``extra_kind`` (for example real paraphrases from :func:`helpers.text.paraphrase.paraphrase_texts`).
    Empty or missing copies, copies identical to their original and indices out of range are
    not added; they are counted in :attr:`Planted.skipped`.
    """
    from collections import Counter

    rng = random.Random(seed)
    kinds = tuple(kinds)
    unknown = set(kinds) - set(_EDITS)
    if unknown:
        raise ValueError(f"unknown edit kinds {sorted(unknown)}; choose from {EDIT_KINDS}")
    if extra_kind in _EDITS or extra_kind == "original" or "+" in extra_kind:
        raise ValueError(f"extra_kind {extra_kind!r} must differ from the rule edits, 'original' and contain no '+'")
    base = ["" if t is None else str(t) for t in texts]
    eligible = [i for i, t in enumerate(base) if t.strip()]
    n_sources = min(n_sources, len(eligible))
    chosen = rng.sample(eligible, n_sources)
    out_t, out_g, out_k, out_s = list(base), list(range(len(base))), ["original"] * len(base), list(range(len(base)))
    lo, hi = (copies, copies) if isinstance(copies, int) else copies
    for src in chosen:
        for _ in range(rng.randint(lo, hi)):
            n_ed = rng.randint(1, max(1, max_edits))
            ed = rng.sample(kinds, min(n_ed, len(kinds)))
            t = base[src]
            for e in ed:
                t = _EDITS[e](t, rng)
            out_t.append(t)
            out_g.append(src)
            out_k.append("+".join(ed))
            out_s.append(src)
    skipped: Counter = Counter()
    for src, extra_copies in (extra or {}).items():
        for t in extra_copies:
            if not 0 <= int(src) < len(base):
                skipped["index out of range"] += 1
            elif t is None or not str(t).strip():
                skipped["empty"] += 1
            elif str(t) == base[src]:
                skipped["same as the original"] += 1
            else:
                out_t.append(str(t))
                out_g.append(int(src))
                out_k.append(extra_kind)
                out_s.append(int(src))
    idx = list(range(len(out_t)))
    if shuffle:
        rng.shuffle(idx)
    pos = {old: new for new, old in enumerate(idx)}
    return Planted([out_t[i] for i in idx], np.asarray([out_g[i] for i in idx], dtype=np.int64),
                   [out_k[i] for i in idx], np.asarray([pos[out_s[i]] for i in idx], dtype=np.int64), dict(skipped))


def template_requests(path: "str | None" = None, *, per_template: int | None = None, seed: int = 0,
                      exclude: Iterable[str] = ()) -> tuple[list[str], np.ndarray]:
    """Requests that share a template but ask for different things: hard negatives for dedup.

    Reads ``{"templates": [{"template": "Explain {} in simple terms.", "fillers": [...]}, ...]}``
    (default ``data/dedup_templates.json``) and fills each template with ``per_template``
    fillers drawn with ``seed`` (all when None). Texts whose normalised form is in ``exclude``
    (for example a real prompt that already says the same thing) are left out, so every text
    returned is a request of its own. Returns the texts and the template index of each.

    A template needs a single ``{}`` slot and at least two distinct fillers; anything else
    raises ``ValueError`` naming the template, rather than being skipped silently.
    """
    import json

    from helpers.core.env import data_dir

    spec = json.loads(open(path or data_dir() / "dedup_templates.json", encoding="utf-8").read())
    rng = random.Random(seed)
    banned = {normalize_text(t) for t in exclude}
    texts: list[str] = []
    tids: list[int] = []
    for ti, entry in enumerate(spec["templates"]):
        tpl, fillers = entry["template"], list(dict.fromkeys(entry["fillers"]))
        if tpl.count("{}") != 1 or len(fillers) < 2:
            raise ValueError(f"template {tpl!r} needs exactly one '{{}}' slot and two or more distinct fillers")
        if per_template is not None:
            fillers = rng.sample(fillers, min(per_template, len(fillers)))
        for f in fillers:
            t = tpl.format(f)
            if normalize_text(t) not in banned:
                texts.append(t)
                tids.append(ti)
    return texts, np.asarray(tids, dtype=np.int64)


def sibling_pairs(template_of: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """All pairs of rows from the same template (``template_of >= 0``) but different true groups.

    ``template_of`` gives each row's template index, or -1 for rows from no template; rows
    planted as copies of a template text carry their source's template and group, so a copy
    and a sibling of its source form a pair, while a copy and its own source do not.
    """
    t = np.asarray(template_of, dtype=np.int64)
    g = np.asarray(groups)
    out = []
    for tid in np.unique(t[t >= 0]):
        idx = np.flatnonzero(t == tid)
        a, b = np.triu_indices(len(idx), 1)
        keep = g[idx[a]] != g[idx[b]]
        out.append(np.stack([idx[a][keep], idx[b][keep]], 1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
def pair_precision_recall(pred_labels: np.ndarray, true_groups: np.ndarray) -> dict:
    """Pair-counting precision/recall of a grouping against the ground truth.

    A pair of rows is *predicted* duplicate when both share a predicted label (same connected
    component, so chains count), and *truly* duplicate when both share a true group.
    Precision = correct predicted pairs / predicted pairs; recall = correct / true pairs.
    The pairs are counted by :func:`sklearn.metrics.cluster.pair_confusion_matrix` (from the
    contingency table, no pair enumeration); it counts ordered pairs, hence the halving.
    """
    from sklearn.metrics.cluster import pair_confusion_matrix

    (_, fp), (fn, tp) = (pair_confusion_matrix(np.asarray(true_groups), np.asarray(pred_labels)) // 2).tolist()
    pred_pairs, true_pairs = tp + fp, tp + fn
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp_pairs": tp,
            "pred_pairs": pred_pairs, "true_pairs": true_pairs}


def pairs_precision_recall(pairs: np.ndarray, true_groups: np.ndarray) -> dict:
    """Precision/recall of the raw pairs a method reported (no transitive closure).

    Each listed pair counts once as predicted; true pairs are counted as in
    :func:`pair_precision_recall`.
    """
    from sklearn.metrics.cluster import pair_confusion_matrix

    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    g = np.asarray(true_groups)
    tp = int((g[pairs[:, 0]] == g[pairs[:, 1]]).sum()) if len(pairs) else 0
    true_pairs = int(pair_confusion_matrix(g, g)[1, 1]) // 2  # ordered same-group pairs, halved
    precision = tp / len(pairs) if len(pairs) else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp_pairs": tp,
            "pred_pairs": int(len(pairs)), "true_pairs": true_pairs}


def group_outcome(keep: np.ndarray, true_groups: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """How a keep-mask treated the ground-truth groups (sizes >= 2).

    ``exactly_one``: groups collapsed to one row (ideal); ``several``: groups where copies
    survived (missed duplicates); ``merged_away``: groups that lost every member because the
    method merged them with another group and kept *that* group's row (a false merge, so the
    content is still represented by a near-duplicate); ``none``: groups that lost every member
    with no kept row in their predicted group (a dedup bug; must be 0). Without the predicted
    ``labels`` every lost group counts as ``none``. ``wrongly_removed_singletons``: rows with
    no true duplicate that were removed (false removals).
    """
    keep = np.asarray(keep, dtype=bool)
    g = np.unique(np.asarray(true_groups), return_inverse=True)[1]
    size = np.bincount(g)
    kept = np.bincount(g, weights=keep.astype(float)).astype(int)
    multi = size >= 2
    lost = multi & (kept == 0)
    merged = np.zeros_like(lost)
    if labels is not None and lost.any():
        lab = np.unique(np.asarray(labels), return_inverse=True)[1]
        label_has_kept = np.bincount(lab, weights=keep.astype(float)) > 0
        # a lost group is merged away when some member's predicted group kept a row
        represented = np.zeros(len(size), dtype=bool)
        np.logical_or.at(represented, g, label_has_kept[lab])
        merged = lost & represented
    return {"groups": int(multi.sum()), "exactly_one": int((multi & (kept == 1)).sum()),
            "several": int((multi & (kept > 1)).sum()), "merged_away": int(merged.sum()),
            "none": int((lost & ~merged).sum()),
            "wrongly_removed_singletons": int(((size[g] == 1) & ~keep).sum())}


def sweep_thresholds(n: int, pairs: np.ndarray, scores: np.ndarray, true_groups: np.ndarray,
                     thresholds: Sequence[float], negatives: np.ndarray | None = None) -> list[dict]:
    """Precision/recall of the grouping at each threshold, from pairs scored once.

    ``pairs``/``scores`` should come from one search at the lowest threshold; for each
    threshold the pairs with ``score >= t`` are grouped into components and scored with
    :func:`pair_precision_recall` (plus the number of rows a dedup would remove). With
    ``negatives`` (pairs known to be different requests, e.g. :func:`sibling_pairs`), each row
    also gives ``negatives_merged``, the share of them put in one group (:func:`share_merged`).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=float)
    out = []
    for t in thresholds:
        sel = pairs[scores >= t]
        labels = connected_labels(n, sel)
        row = {"threshold": float(t), **pair_precision_recall(labels, true_groups)}
        row["removed"] = int(n - len(np.unique(labels)))
        if negatives is not None:
            row["negatives_merged"] = share_merged(labels, negatives)
        out.append(row)
    return out


def share_merged(labels: np.ndarray, pairs: np.ndarray) -> float:
    """Share of ``pairs`` whose two rows a grouping put in one group (same label).

    For pairs known to be *different* requests (hard negatives) this is the false-merge
    rate on them; NaN when there are no pairs.
    """
    labels = np.asarray(labels)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return float(np.mean(labels[p[:, 0]] == labels[p[:, 1]])) if len(p) else float("nan")


def copy_recall_by_kind(labels: np.ndarray, planted: "Planted", single_only: bool = False) -> dict[str, float]:
    """Share of planted copies grouped with their original, for each edit kind they contain.

    A copy made with ``"case+typo"`` counts towards both ``case`` and ``typo`` (with
    ``single_only`` only copies made by one edit count, which isolates each edit's effect);
    copies added with ``extra`` count under their ``extra_kind`` (after the rule edits);
    ``"all"`` covers every copy counted.
    """
    labels = np.asarray(labels)
    copies = [i for i, k in enumerate(planted.kind) if k != "original" and (not single_only or "+" not in k)]
    hit = {i: bool(labels[i] == labels[planted.source[i]]) for i in copies}
    out: dict[str, float] = {}
    present = {e for i in copies for e in planted.kind[i].split("+")}
    for kind in [k for k in EDIT_KINDS if k in present] + sorted(present - set(EDIT_KINDS)):
        sel = [hit[i] for i in copies if kind in planted.kind[i].split("+")]
        if sel:
            out[kind] = float(np.mean(sel))
    out["all"] = float(np.mean(list(hit.values()))) if hit else float("nan")
    return out


def pair_recall(found: np.ndarray, reference: np.ndarray, n: int) -> float:
    """Share of ``reference`` pairs (e.g. from exact search) that ``found`` also contains."""
    ref = np.asarray(reference, dtype=np.int64).reshape(-1, 2)
    if len(ref) == 0:
        return 1.0
    fnd = np.asarray(found, dtype=np.int64).reshape(-1, 2)
    key = lambda p: np.minimum(p[:, 0], p[:, 1]) * n + np.maximum(p[:, 0], p[:, 1])  # noqa: E731
    return float(np.isin(key(ref), key(fnd)).mean())


# --------------------------------------------------------------------------------------
# synthetic embeddings for tests and benchmarks
# --------------------------------------------------------------------------------------
def clustered_embeddings(n: int, dim: int = 384, n_centers: int | None = None, dup_fraction: float = 0.1,
                         spread: float = 0.6, dup_noise: tuple[float, float] = (0.15, 0.55), seed: int = 0,
                         chunk: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Random-but-clustered unit vectors with planted near-duplicates.

    ``n_centers`` topic centres (default ``n // 100``); each base point is its centre plus
    Gaussian noise (``spread``: per-dimension std relative to ``1/sqrt(dim)``; 0.6 gives
    within-topic cosines of about 0.7). A ``dup_fraction`` of the rows are near copies of a
    base point (relative noise drawn uniformly from ``dup_noise``, so the cosine to the source
    spreads from about 0.87 to 0.99 and some copies fall below a 0.9 threshold). Returns
    ``(embeddings float32 (n, dim), source)`` where ``source[i]`` is the base row a copy
    was made from (itself for base rows).
    """
    rng = np.random.default_rng(seed)
    n_centers = n_centers or max(1, n // 100)
    n_dup = int(round(n * dup_fraction))
    n_base = n - n_dup
    centers = rng.standard_normal((n_centers, dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    x = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(spread / np.sqrt(dim))
    topic = rng.integers(0, n_centers, n_base)
    for a in range(0, n_base, chunk):
        b = min(n_base, a + chunk)
        x[a:b] = centers[topic[a:b]] + scale * rng.standard_normal((b - a, dim), dtype=np.float32)
    x[:n_base] /= np.linalg.norm(x[:n_base], axis=1, keepdims=True)
    src = np.arange(n)
    if n_dup and n_base:
        src[n_base:] = rng.integers(0, n_base, n_dup)
        dscale = (rng.uniform(dup_noise[0], dup_noise[1], n_dup) / np.sqrt(dim)).astype(np.float32)
        for a in range(n_base, n, chunk):
            b = min(n, a + chunk)
            x[a:b] = x[src[a:b]] + dscale[a - n_base:b - n_base, None] * rng.standard_normal((b - a, dim), dtype=np.float32)
        x[n_base:] /= np.linalg.norm(x[n_base:], axis=1, keepdims=True)
    perm = rng.permutation(n)
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    return x[perm], inv[src[perm]]
