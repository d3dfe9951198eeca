"""Saving a notebook's data: one ``datasets`` folder plus a dataset card, the same way everywhere.

:func:`save_dataset` is the one function every chapter calls to write its output. It takes rows
(or a ready ``datasets.Dataset``), stores audio columns as a ``datasets.Audio`` feature with their
sampling rate, saves with ``save_to_disk`` and writes ``README.md``: a Hugging Face dataset card
built with ``huggingface_hub``'s :class:`~huggingface_hub.DatasetCard` classes, whose YAML front
matter carries the licence, source data, the models that generated or judged the rows, the
filters with how many rows each removed, smoke or full mode and the date.

Audio and decoding: ``datasets`` decodes audio through ``torchcodec``. The ``torchcodec`` wheels on
PyPI link against CUDA builds of torch and do not import beside the CPU torch this course pins, so
on such a machine the feature is saved with ``decode=False`` (rows hold the WAV bytes) and
:func:`load_audio` reads them as arrays with ``soundfile``. Where ``torchcodec`` works (Colab), the
feature decodes as usual: ``ds[0]["audio"]`` is then a decoder; :func:`load_audio` handles both.

:func:`load_jsonl` reads a JSON-lines file (seed files in ``data/``, a pipeline's input items) with
errors that name the line.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["save_dataset", "load_dataset_dir", "load_audio", "load_jsonl", "wav_bytes", "size_category"]

_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

Made by notebook `{{ notebook }}` of the Synthetic Data Workshop ({{ mode }} run, {{ date }}).
{% if models %}
## Models

| role | model |
|---|---|
{% for role, name in models.items() -%}
| {{ role }} | `{{ name }}` |
{% endfor %}{% endif %}{% if sources %}
## Source data

{% for name, note in sources.items() -%}
- **{{ name }}**: {{ note }}
{% endfor %}{% endif %}{% if filters %}
## Filters

| filter | rows removed | what it removes |
|---|---|---|
{% for name, f in filters.items() -%}
| {{ name }} | {{ f.removed }} | {{ f.what }} |
{% endfor %}{% endif %}
## Counts

| | count |
|---|---|
{% for name, value in counts.items() -%}
| {{ name }} | {{ value }} |
{% endfor %}
{%- if columns %}
## Columns

| column | meaning |
|---|---|
{% for name, meaning in columns.items() -%}
| `{{ name }}` | {{ meaning }} |
{% endfor %}{% endif %}{% if audio_column %}
## Loading the audio

The `{{ audio_column }}` column is a `datasets.Audio` feature at {{ sampling_rate }} Hz, stored as WAV bytes.
`datasets` decodes audio through `torchcodec`, which does not install beside a CPU-only torch, so this copy
was saved with `decode={{ audio_decode }}`. Load the clips as arrays with the course helper:

```python
from helpers.core.io import load_dataset_dir, load_audio
ds = load_dataset_dir("{{ folder_name }}")
audio, sr = load_audio(ds[0]["{{ audio_column }}"])   # float32 mono array, sampling rate
```

or turn decoding on where `torchcodec` works: `ds.cast_column("{{ audio_column }}", datasets.Audio())`.
{% endif %}
## Licence

`{{ license }}`. {{ license_note }}
{% for heading, text in sections.items() %}
## {{ heading }}

{{ text }}
{% endfor %}
"""


def size_category(n: int) -> str:
    """The Hugging Face ``size_categories`` tag for ``n`` rows."""
    for limit, tag in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                       (1_000_000, "100K<n<1M")):
        if n < limit:
            return tag
    return "n>1M"


def wav_bytes(audio: Any, sr: int, fmt: str = "WAV") -> bytes:
    """A float array as 16-bit PCM WAV (or FLAC) file bytes, what ``datasets.Audio`` stores.

    NaNs become 0 and values are clipped to [-1, 1] first, so a loud clip saturates instead of wrapping.
    """
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    a = np.clip(np.nan_to_num(np.asarray(audio, dtype=np.float32)), -1.0, 1.0)
    sf.write(buf, a, int(sr), format=fmt, subtype="PCM_16")
    return buf.getvalue()


def _audio_cell(value: Any, index: int, sample_rate: int | None) -> tuple[dict[str, Any], int]:
    """One row's audio as ``{"bytes", "path"}`` plus its sampling rate."""
    import numpy as np
    import soundfile as sf

    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"audio file of row {index} not found: {path}")
        data = path.read_bytes()
        sr = sf.info(str(path)).samplerate
        if sample_rate and sr != sample_rate:
            arr, _ = sf.read(str(path), dtype="float32", always_2d=False)
            return _audio_cell({"array": arr, "sampling_rate": sr}, index, sample_rate)
        return {"bytes": data, "path": path.name}, sr
    if isinstance(value, Mapping) and "array" in value and "sampling_rate" in value:
        arr = np.asarray(value["array"], dtype=np.float32)
        if arr.ndim != 1:
            raise ValueError(f"row {index}: audio must be mono (1-D), got shape {arr.shape}")
        sr = int(value["sampling_rate"])
        if sample_rate and sr != sample_rate:
            import librosa

            arr, sr = librosa.resample(arr, orig_sr=sr, target_sr=sample_rate), sample_rate
        return {"bytes": wav_bytes(arr, sr), "path": f"{index:06d}.wav"}, sr
    if isinstance(value, Mapping) and "bytes" in value:
        sr = sf.info(io.BytesIO(value["bytes"])).samplerate
        return {"bytes": value["bytes"], "path": value.get("path") or f"{index:06d}.wav"}, sr
    raise TypeError(f"row {index}: an audio cell is a file path, {{'array', 'sampling_rate'}} or "
                    f"{{'bytes', 'path'}}; got {type(value).__name__}")


def _as_dataset(data: Any, features: Any, audio_column: str | None, sample_rate: int | None):
    import datasets

    if isinstance(data, datasets.Dataset):
        if audio_column and audio_column in data.column_names and not isinstance(
                data.features[audio_column], datasets.Audio):
            rows = data.to_list()
            return _as_dataset(rows, None, audio_column, sample_rate)
        return data, sample_rate
    if isinstance(data, Mapping):  # columns
        data = [dict(zip(data, vals)) for vals in zip(*data.values())]
    rows = [dict(r) for r in data]
    if not rows and features is None:
        raise ValueError("no rows to save and no `features` given: pass features= (a datasets.Features or "
                         "{column: dtype}) so an empty dataset still has its columns")
    if features is not None and not isinstance(features, datasets.Features):
        features = datasets.Features({k: (v if not isinstance(v, str) else datasets.Value(v))
                                      for k, v in features.items()})
    if audio_column:
        rates = set()
        for i, r in enumerate(rows):
            if audio_column not in r:
                raise KeyError(f"row {i} has no audio column {audio_column!r}")
            r[audio_column], sr = _audio_cell(r[audio_column], i, sample_rate)
            rates.add(sr)
        if len(rates) > 1:
            raise ValueError(f"audio rows have different sampling rates {sorted(rates)}: pass sample_rate= to "
                             "resample them to one")
        sample_rate = sample_rate or (rates.pop() if rates else None)
        if features is not None:  # stored as a plain struct first; cast to Audio below (no torchcodec needed)
            features = datasets.Features({**features, audio_column: {"bytes": datasets.Value("binary"),
                                                                     "path": datasets.Value("string")}})
    if rows:
        ds = datasets.Dataset.from_list(rows, features=features)
    else:
        ds = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    if audio_column:
        decode = bool(getattr(datasets.config, "TORCHCODEC_AVAILABLE", False))
        ds = ds.cast_column(audio_column, datasets.Audio(sampling_rate=sample_rate, decode=decode))
    return ds, sample_rate


def save_dataset(data: Any, folder: str | Path, *, title: str, summary: str, notebook: str,
                 smoke: bool, license: str = "apache-2.0", license_note: str = "",
                 models: Mapping[str, str] | None = None, sources: Mapping[str, str] | None = None,
                 filters: Mapping[str, tuple[str, int] | Mapping[str, Any]] | None = None,
                 counts: Mapping[str, Any] | None = None, columns: Mapping[str, str] | None = None,
                 sections: Mapping[str, str] | None = None, tags: Sequence[str] = ("synthetic",),
                 task_categories: Sequence[str] = ("text-generation",), language: Sequence[str] = ("en",),
                 features: Any = None, audio_column: str | None = None, sample_rate: int | None = None,
                 date: str | None = None):
    """Save rows as a ``datasets`` folder plus a ``README.md`` dataset card; return the ``Dataset``.

    Args:
        data: a ``datasets.Dataset``, a list of row dicts, or a dict of columns.
        folder: where to save (``load_from_disk(folder)`` reads it back; the card is ``folder/README.md``).
        title, summary: the card's heading and first paragraph.
        notebook: the chapter that made it (e.g. ``"05_code_execution_feedback"``).
        smoke: whether this was a smoke run (said in the card and its metadata).
        license, license_note: SPDX id of the data and any caveat (seed data, model licences).
        models: role -> model name (``{"generator": "qwen-coder-0.5b", "judge": ...}``).
        sources: source data name -> where it comes from and its licence.
        filters: filter name -> ``(what it removes, rows removed)`` or ``{"what": ..., "removed": ...}``.
            Every row a pipeline dropped should be counted here: nothing is lost silently.
        counts: anything else worth counting (rows generated, kept, per category ...).
        columns: column -> meaning.
        sections: heading -> markdown, appended (limitations, caveats, notes).
        features: ``datasets.Features`` or ``{column: dtype}``; required when there are no rows.
        audio_column, sample_rate: store that column as ``datasets.Audio`` at ``sample_rate`` (cells are
            file paths, ``{"array", "sampling_rate"}`` or ``{"bytes", "path"}``; other rates are resampled).
        date: ISO date for the card (default today).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    folder = Path(folder)
    ds, sample_rate = _as_dataset(data, features, audio_column, sample_rate)
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_to_disk(str(folder), num_shards=1)  # one shard, so an empty set reloads too
    filt = {}
    for name, f in (filters or {}).items():
        what, removed = (f["what"], f["removed"]) if isinstance(f, Mapping) else f
        filt[name] = {"what": str(what), "removed": int(removed)}
    date = date or _dt.date.today().isoformat()
    all_counts = {"rows": len(ds), **dict(counts or {})}
    card_data = DatasetCardData(
        license=license, language=list(language), pretty_name=title, size_categories=[size_category(len(ds))],
        task_categories=list(task_categories), tags=list(tags), source_datasets=list(sources or {}) or None,
        # course-specific metadata, kept in the YAML header so tools can read it back
        notebook=notebook, run_mode="smoke" if smoke else "full", created=date,
        models=dict(models or {}) or None, filters={k: v["removed"] for k, v in filt.items()} or None,
    )
    audio_decode = bool(audio_column) and bool(ds.features[audio_column].decode)
    card = DatasetCard.from_template(
        card_data, template_str=_CARD_TEMPLATE, title=title, summary=summary.strip(), notebook=notebook,
        mode="smoke" if smoke else "full", date=date, models=dict(models or {}), sources=dict(sources or {}),
        filters=filt, counts=all_counts, columns=dict(columns or {}), audio_column=audio_column,
        sampling_rate=sample_rate, audio_decode=audio_decode, folder_name=str(folder), license=license,
        license_note=license_note, sections=dict(sections or {}))
    card.save(folder / "README.md")
    return ds


def load_jsonl(path: str | Path, *, required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (blank lines skipped). Raises ``ValueError`` naming the line for invalid
    JSON or a row without one of ``required``."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{path}:{n}: missing {missing}")
        rows.append(row)
    return rows


def load_dataset_dir(folder: str | Path):
    """A folder written by :func:`save_dataset`, as a ``datasets.Dataset``."""
    from datasets import load_from_disk

    return load_from_disk(str(folder))


def load_audio(cell: Any) -> tuple[Any, int]:
    """One audio cell of a saved dataset as ``(float32 mono array, sampling rate)``.

    Works for undecoded cells (``{"bytes", "path"}``, read with ``soundfile``), decoded dicts
    (``{"array", "sampling_rate"}``) and ``torchcodec`` decoders.
    """
    import numpy as np
    import soundfile as sf

    if isinstance(cell, Mapping) and cell.get("bytes") is not None:
        arr, sr = sf.read(io.BytesIO(cell["bytes"]), dtype="float32", always_2d=False)
    elif isinstance(cell, Mapping) and "array" in cell:
        arr, sr = np.asarray(cell["array"], dtype=np.float32), int(cell["sampling_rate"])
    elif hasattr(cell, "get_all_samples"):  # torchcodec AudioDecoder
        samples = cell.get_all_samples()
        arr, sr = samples.data.numpy().astype(np.float32), int(samples.sample_rate)
    else:
        raise TypeError(f"not an audio cell: {type(cell).__name__}")
    if arr.ndim > 1:
        arr = arr.mean(axis=0 if arr.shape[0] < arr.shape[-1] else -1)
    return arr, int(sr)
