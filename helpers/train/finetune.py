"""Fine-tuning the bundled instruct LMs with TRL and PEFT: DPO and SFT, resumable, sized for 2 CPU cores.

>>> pairs = [{"prompt": "What is 2+3?", "chosen": "5", "rejected": "6"}, ...]
>>> report = dpo("smollm2-135m", pairs, max_steps=8)          # LoRA r=16 on all linear layers
>>> print(report.summary())
>>> report.lm().chat(["What is 4+4?"], temperature=0)          # generate with the trained model
>>> report = sft("smollm2-135m", [{"prompt": ..., "completion": ...}], max_steps=20)

The model is a bundled short name (``"smollm2-135m"``), a hub id or a local path, resolved by
:mod:`helpers.core.models`; or a :class:`Trainable` from :func:`load_trainable`; or an
:class:`~helpers.lm.generation.LM` (trained in place).

Prompts are plain user text (or a list of ``{"role", "content"}`` turns). They are rendered with
the model's chat template exactly as :meth:`helpers.lm.generation.LM.render` renders them, and a
reply is the assistant turn as the template writes it (the text and the end-of-turn token), so
the trained model sees at training time what ``LM.chat`` shows it later.

TRL does the work: :class:`trl.DPOTrainer` and :class:`trl.SFTTrainer`, with a
:class:`peft.LoraConfig` when ``lora=True``. This module chooses defaults that fit 2 CPU cores
(short sequences, reference log-probabilities computed once before training, no gradient
checkpointing, float32; bfloat16 autocast only on a GPU that supports it), checks the data
before TRL sees it, and makes every run resumable:

* **Checkpoints.** A run writes ``checkpoint-<step>`` folders into ``output_dir`` (by default
  ``<outputs>/train/<method>-<model>-<fingerprint of the settings and data>``). Calling again with
  the same settings finds the newest complete checkpoint and resumes from it (Trainer's
  ``resume_from_checkpoint``). A folder that holds a run with other settings is refused. The
  number of steps is not part of the fingerprint, so a finished run can be extended.
* **Reference log-probabilities once per process.** DPO compares the policy with the frozen
  reference model on every pair, and TRL computes those reference log-probabilities before
  training (``precompute_ref_log_probs``). Its own cache only works for datasets stored on disk, so
  every run in a notebook paid again for the same pairs (the held-out pairs of every run, the
  training pairs of a second run with another loss). :func:`dpo` keeps them per pair, keyed by a
  hash of the reference weights, the token ids and the truncation settings, for the rest of the
  process (:func:`ref_logps_cache_info`); in chapter 07 this cut the set-up of the DPO + NLL run on
  the same pairs from 33 s to 1.5 s. The remembered values came from batches padded differently
  from the new run's, which changes a log-prob by float rounding only.
* **Reports.** Every call returns a :class:`helpers.train.report.TrainReport`: steps, wall time,
  tokens per second (counted from the training batches, padding excluded), peak memory, the log
  history (for DPO ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``,
  ``rewards/margins``, ``logps/chosen``, ``logps/rejected``) and the trained model.

The GGUF quirk: the bundled LMs are GGUF files de-quantised into a cached fp32 folder whose config
still says ``quantization_config: gguf``, and transformers' Trainer refuses such a model ("... is
quantized with gguf but that quantization method do not support training"). The weights are
plain float32, so :func:`load_trainable` removes the quantization markers
(:func:`clear_quantization_markers`) before training.

On 2 CPU cores, DPO on SmolLM2-135M costs seconds per step with short pairs, and LoRA steps are
faster than full fine-tuning (``benchmarks/bench_train.py`` prints both). On a GPU pass a larger
``batch_size`` and ``max_length``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from helpers.core.jobs import fingerprint
from helpers.train.report import PeakMemory, TrainReport

__all__ = ["Trainable", "load_trainable", "lora_config", "clear_quantization_markers", "render_prompt",
           "render_reply", "preference_rows", "completion_rows", "last_checkpoint", "dpo", "sft",
           "ref_logps_cache_info", "DEFAULT_LR"]

#: Default learning rates by (method, lora): LoRA needs a larger step than full fine-tuning.
DEFAULT_LR = {("dpo", True): 1e-4, ("dpo", False): 1e-5, ("sft", True): 2e-4, ("sft", False): 2e-5}

#: Name of the file in ``output_dir`` that records which settings and data its checkpoints belong to.
RUN_FILE = "helpers_train_run.json"

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


# --------------------------------------------------------------------------- the model
@dataclass
class Trainable:
    """A causal LM ready for TRL: the model (no quantization markers), its tokenizer, and the LoRA
    config TRL should wrap it with (``None`` for full fine-tuning)."""

    model: Any
    tokenizer: Any
    peft_config: Any
    name: str

    def __iter__(self) -> Iterator[Any]:  # model, tokenizer = load_trainable(...)
        return iter((self.model, self.tokenizer))


def lora_config(r: int = 16, alpha: int | None = None, dropout: float = 0.0,
                target_modules: str | list[str] = "all-linear"):
    """A :class:`peft.LoraConfig` for a causal LM: rank ``r``, ``alpha`` (default ``2 * r``), on
    every linear layer but the output head by default."""
    from peft import LoraConfig

    if r < 1:
        raise ValueError(f"LoRA rank r must be at least 1, got {r}")
    return LoraConfig(r=r, lora_alpha=alpha if alpha is not None else 2 * r, lora_dropout=dropout,
                      target_modules=target_modules, bias="none", task_type="CAUSAL_LM")


def clear_quantization_markers(model: Any) -> Any:
    """Remove the GGUF quantization markers from a model whose weights are already plain floats.

    Transformers keeps ``hf_quantizer`` and ``config.quantization_config`` on a model loaded from a
    GGUF-derived folder, and ``Trainer`` then refuses to train it. Uses the quantizer's own
    ``remove_quantization_config``; returns the model.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        method = str(getattr(quantizer.quantization_config, "quant_method", "")).lower()
        if "gguf" not in method:
            raise ValueError(f"the model is quantized with {method!r}, not de-quantised GGUF: it cannot be trained "
                             "as is (load it in float, or add adapters with PEFT's own quantized recipes)")
        quantizer.remove_quantization_config(model)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    return model


def load_trainable(name: str, *, lora: bool = True, r: int = 16, lora_alpha: int | None = None,
                   lora_dropout: float = 0.0, target_modules: str | list[str] = "all-linear",
                   device: str | None = None, dtype: Any = None) -> Trainable:
    """Load a bundled short name, hub id or local path for training.

    Args:
        name: ``"smollm2-135m"``, a hub id or a local folder (see :mod:`helpers.core.models`).
        lora: train LoRA adapters (``True``) or every weight (``False``).
        r, lora_alpha, lora_dropout, target_modules: the LoRA settings (:func:`lora_config`).
        device: where to load it (default: the best available).
        dtype: weight dtype (default float32 everywhere: on a GPU, bfloat16 autocast does the speed-up
            and the optimizer keeps float32 weights).

    Returns:
        a :class:`Trainable`; ``model, tok = load_trainable(...)`` unpacks the model and tokenizer.
    """
    import torch

    from helpers.core.models import load_causal_lm

    model, tok = load_causal_lm(name, device=device, dtype=dtype if dtype is not None else torch.float32)
    clear_quantization_markers(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    peft_config = lora_config(r, lora_alpha, lora_dropout, target_modules) if lora else None
    return Trainable(model, tok, peft_config, name)


def _as_trainable(model: Any, *, lora: bool, r: int, lora_alpha: int | None, device: str | None) -> Trainable:
    if isinstance(model, Trainable):
        return model
    if isinstance(model, (str, os.PathLike)):
        return load_trainable(str(model), lora=lora, r=r, lora_alpha=lora_alpha, device=device)
    if hasattr(model, "model") and hasattr(model, "tokenizer"):  # an LM: trained in place
        clear_quantization_markers(model.model)
        return Trainable(model.model, model.tokenizer, lora_config(r, lora_alpha) if lora else None,
                         getattr(model, "name", "model"))
    raise TypeError(f"model must be a name, a Trainable or an LM, got {type(model).__name__}")


# --------------------------------------------------------------------------- the data
def render_prompt(tokenizer: Any, prompt: Any, system: str | None = None) -> str:
    """The prompt text exactly as :meth:`helpers.lm.generation.LM.render` makes it (chat template,
    generation prompt added)."""
    from helpers.lm.generation import as_messages

    return tokenizer.apply_chat_template(as_messages(prompt, system), add_generation_prompt=True, tokenize=False)


def render_reply(tokenizer: Any, prompt: Any, reply: str, system: str | None = None) -> str:
    """The assistant turn the chat template writes after :func:`render_prompt`: ``reply`` and the
    end-of-turn token (``"5<|im_end|>"`` for SmolLM2), so the model learns to stop where ``LM.chat`` stops.

    Trailing whitespace after the end-of-turn token is dropped (TRL appends the EOS token when
    the text does not already end with it). Templates that render the prompt differently once a
    reply follows fall back to ``reply + eos_token``.
    """
    from helpers.lm.generation import as_messages

    head = render_prompt(tokenizer, prompt, system)
    full = tokenizer.apply_chat_template(as_messages(prompt, system) + [{"role": "assistant", "content": reply}],
                                         tokenize=False)
    if full.startswith(head) and len(full) > len(head):
        return full[len(head):].rstrip()
    return reply + (tokenizer.eos_token or "")


def _check_rows(rows: Iterable[dict] | None, keys: Sequence[str], what: str) -> list[dict]:
    """The rows as a list, after checking that there are some and that each has ``keys`` as text."""
    if rows is None:
        raise ValueError(f"{what} is None: give a list of dicts with keys {list(keys)}")
    if isinstance(rows, dict):
        raise TypeError(f"{what} must be a list of dicts, got one dict")
    rows = list(rows)
    if not rows:
        raise ValueError(f"{what} is empty: there is nothing to train on; give at least one dict with keys "
                         f"{list(keys)}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TypeError(f"{what}[{i}] is a {type(row).__name__}, not a dict with keys {list(keys)}")
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"{what}[{i}] lacks {missing}; each row needs {list(keys)} (it has {sorted(row)})")
        for k in keys[1:]:
            if not isinstance(row[k], str):
                raise TypeError(f"{what}[{i}][{k!r}] must be a string, got {type(row[k]).__name__}")
        if not isinstance(row[keys[0]], (str, list)):
            raise TypeError(f"{what}[{i}][{keys[0]!r}] must be text or a list of messages")
    return rows


def preference_rows(tokenizer: Any, pairs: Iterable[dict], system: str | None = None) -> list[dict[str, str]]:
    """``{"prompt", "chosen", "rejected"}`` pairs rendered for TRL: the prompt as :func:`render_prompt`,
    each reply as :func:`render_reply`. Raises ``ValueError`` on an empty list or a malformed pair."""
    rows = _check_rows(pairs, ("prompt", "chosen", "rejected"), "pairs")
    return [{"prompt": render_prompt(tokenizer, p["prompt"], system),
             "chosen": render_reply(tokenizer, p["prompt"], p["chosen"], system),
             "rejected": render_reply(tokenizer, p["prompt"], p["rejected"], system)} for p in rows]


def completion_rows(tokenizer: Any, examples: Iterable[dict], system: str | None = None) -> list[dict[str, str]]:
    """``{"prompt", "completion"}`` examples rendered for TRL's SFT (loss on the completion only)."""
    rows = _check_rows(examples, ("prompt", "completion"), "examples")
    return [{"prompt": render_prompt(tokenizer, e["prompt"], system),
             "completion": render_reply(tokenizer, e["prompt"], e["completion"], system)} for e in rows]


def _check_lengths(tokenizer: Any, rows: list[dict[str, str]], max_length: int | None, what: str) -> int:
    """Raise when every rendered prompt fills ``max_length`` (TRL would drop them all); warn and return
    how many do when only some do."""
    if max_length is None:
        return 0
    lengths = [len(tokenizer(r["prompt"])["input_ids"]) for r in rows]
    long = sum(n >= max_length for n in lengths)
    if long == len(rows):
        raise ValueError(f"max_length={max_length} is too short for {what}: every rendered prompt is at least "
                         f"{min(lengths)} tokens (the chat template adds its own system and role tokens), so no "
                         f"reply token would be left to train on. Raise max_length above {max(lengths) + 8}.")
    if long:
        warnings.warn(f"{long} of {len(rows)} {what} have a rendered prompt of max_length={max_length} tokens or "
                      "more and are left out of training; raise max_length to keep them", stacklevel=3)
    return long


# --------------------------------------------------------------------------- checkpoints
def last_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-<step>`` folder in ``output_dir`` (one whose
    ``trainer_state.json``, written last, exists), or ``None``."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    done = sorted((int(m.group(1)), p) for p in folder.iterdir()
                  if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").exists())
    return str(done[-1][1]) if done else None


def _checkpoint_step(checkpoint: str | os.PathLike) -> int:
    """The optimizer step a ``checkpoint-<step>`` folder was saved at."""
    m = _CHECKPOINT.match(Path(checkpoint).name)
    if not m:
        raise ValueError(f"not a checkpoint folder: {checkpoint}")
    return int(m.group(1))


def _claim_output_dir(output_dir: Path, config: dict[str, Any]) -> None:
    """Record ``config`` in ``output_dir``, or refuse a folder that holds a run with another config."""
    output_dir.mkdir(parents=True, exist_ok=True)
    run_file = output_dir / RUN_FILE
    config = json.loads(json.dumps(config, default=str))
    if run_file.exists():
        old = json.loads(run_file.read_text()).get("config", {})
        if old != config:
            differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise ValueError(f"{output_dir} holds checkpoints of a run with other settings (differs in: "
                             f"{', '.join(differ)}); resuming from them would mix two runs. Use another output_dir "
                             f"(or leave output_dir=None for one folder per setting), or delete this one.")
        return
    tmp = run_file.with_name(run_file.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"config": config, "fingerprint": fingerprint(config)}, indent=2))
    os.replace(tmp, run_file)


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """Hide transformers' v6 renaming notices (TRL 1.16 still uses the old names; nothing a caller can
    change) and, while ``progress`` is off, datasets' and TRL's progress bars."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    old_env = os.environ.get("TQDM_DISABLE")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*deprecated and will be removed in v6", category=FutureWarning)
        if not progress:
            datasets.disable_progress_bars()
            os.environ["TQDM_DISABLE"] = "1"
        try:
            yield
        finally:
            if not progress:
                if not was_disabled:
                    datasets.enable_progress_bars()
                if old_env is None:
                    os.environ.pop("TQDM_DISABLE", None)
                else:
                    os.environ["TQDM_DISABLE"] = old_env


def _callbacks(stop_after: int | None) -> tuple[Any, list[Any]]:
    """``(start, callbacks)``: ``start`` records the step and token count when ``train`` begins (after a
    resume has restored them), so the report counts this call's work only; with ``stop_after``, a
    second callback stops training after that many steps of this call, without saving, as a kill would."""
    from transformers import TrainerCallback

    class Start(TrainerCallback):
        def __init__(self) -> None:
            self.step = 0
            self.tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.step, self.tokens = state.global_step, state.num_input_tokens_seen

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if stop_after is not None and state.global_step - start.step >= stop_after:
                control.should_training_stop = True
                control.should_save = False  # runs after Trainer's own callback, so this wins
            return control

    start = Start()
    return start, [start, StopAfter()]


# --------------------------------------------------------------------------- the runs
def _run(method: str, model: Any, rows_fn: Any, data: Any, eval_data: Any, *, learning_rate: float | None,
         epochs: float, max_steps: int | None, batch_size: int, grad_accum: int, max_length: int | None,
         lora: bool, r: int, lora_alpha: int | None, merge: bool, output_dir: str | os.PathLike | None,
         seed: int, eval_every: int | None, log_every: int, save_every: int | None, save_total_limit: int,
         system: str | None, gradient_checkpointing: bool, bf16: bool | None, device: str | None,
         stop_after: int | None, progress: bool, method_config: dict[str, Any],
         trainer_cls: Any, config_cls: Any, config_kwargs: dict[str, Any]) -> TrainReport:
    """The shared body of :func:`dpo` and :func:`sft`."""
    t_setup = time.perf_counter()
    what = "pairs" if method == "dpo" else "examples"
    # dpo() and sft() checked data and eval_data (as lists) before their slow imports
    if batch_size < 1 or grad_accum < 1:
        raise ValueError(f"batch_size and grad_accum must be at least 1, got {batch_size} and {grad_accum}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be at least 1 (or None to train for `epochs`), got {max_steps}")
    if isinstance(model, Trainable):  # its own LoRA config (or none) decides
        lora = model.peft_config is not None
        r = getattr(model.peft_config, "r", r)
        lora_alpha = getattr(model.peft_config, "lora_alpha", lora_alpha)
    lr = learning_rate if learning_rate is not None else DEFAULT_LR[(method, lora)]

    model_name = str(model) if isinstance(model, (str, os.PathLike)) else getattr(model, "name", type(model).__name__)
    config = {"method": method, "model": model_name, "lora": lora, "r": r if lora else None,
              "lora_alpha": lora_alpha if lora else None, "learning_rate": lr, "batch_size": batch_size,
              "grad_accum": grad_accum, "max_length": max_length, "seed": seed, "system": system,
              "data": fingerprint(data), "eval_data": fingerprint(eval_data) if eval_data else None, **method_config}
    if output_dir is None:
        from helpers.core.env import output_dir as outputs

        safe = re.sub(r"[^\w.-]+", "_", Path(model_name).name)[:40]
        output_dir = outputs("train") / f"{method}-{safe}-{fingerprint(config)}"
    out = Path(output_dir)
    _claim_output_dir(out, config)

    import torch

    from helpers.core.env import pick_device

    want = pick_device(device)
    tr = _as_trainable(model, lora=lora, r=r, lora_alpha=lora_alpha, device=want)
    tok = tr.tokenizer
    rows = rows_fn(tok, data, system)
    dropped = _check_lengths(tok, rows, max_length, what)
    eval_rows = rows_fn(tok, eval_data, system) if eval_data else None

    from datasets import Dataset
    from transformers import PrinterCallback

    if bf16 is None:
        bf16 = bool(want.startswith("cuda") and torch.cuda.is_bf16_supported())
    n_batches = math.ceil(len(rows) / batch_size)
    total_steps = max_steps or max(1, math.ceil(math.ceil(n_batches / grad_accum) * epochs))
    common = dict(
        output_dir=str(out), per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=lr, num_train_epochs=epochs,
        max_steps=max_steps if max_steps is not None else -1, max_length=max_length,
        logging_steps=log_every, save_strategy="no" if save_every == 0 else "steps",
        save_steps=save_every or max(1, math.ceil(total_steps / 5)), save_total_limit=save_total_limit,
        eval_strategy="steps" if (eval_rows and eval_every) else "no", eval_steps=eval_every,
        seed=seed, data_seed=seed, bf16=bf16, fp16=False,
        activation_checkpointing=gradient_checkpointing,  # transformers 5's name for gradient checkpointing
        report_to="none", disable_tqdm=not progress, use_cpu=want == "cpu",
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
    )
    start, callbacks = _callbacks(stop_after)
    resume = last_checkpoint(out)
    with _quiet(progress):
        trainer = trainer_cls(
            model=tr.model, args=config_cls(**common, **config_kwargs),
            train_dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=tok, peft_config=tr.peft_config, callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)  # it prints every log dict when the progress bar is off
        setup_seconds = time.perf_counter() - t_setup
        with PeakMemory(str(trainer.args.device)) as mem:
            t0 = time.perf_counter()
            if resume is not None and _checkpoint_step(resume) >= total_steps:
                # A finished run: load it. (transformers' train() would take one more optimizer step
                # before it checks max_steps, so a rerun of a finished run would not return the same model.)
                from transformers import TrainerState

                trainer._load_from_checkpoint(resume)
                trainer.state = TrainerState.load_from_json(str(Path(resume) / "trainer_state.json"))
                start.step, start.tokens = trainer.state.global_step, trainer.state.num_input_tokens_seen
            else:
                trainer.train(resume_from_checkpoint=resume)
            seconds = time.perf_counter() - t0
        evals = [e for e in trainer.state.log_history if any(k.startswith("eval_") for k in e)]
        if evals and evals[-1].get("step") == trainer.state.global_step:  # evaluated at the last step already
            eval_metrics = {k: v for k, v in evals[-1].items() if k.startswith("eval_")}
        else:
            eval_metrics = trainer.evaluate() if eval_rows else {}

    state = trainer.state
    trained = trainer.model
    trainable_params = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    total_params = sum(p.numel() for p in trained.parameters())
    if tr.peft_config is not None and merge:
        trained = trained.merge_and_unload()
    trained.eval()
    history = [dict(e) for e in state.log_history]
    losses = [e["loss"] for e in history if "loss" in e]
    summary = [e for e in history if "train_loss" in e]
    final_loss = losses[-1] if losses else (summary[-1]["train_loss"] if summary else float("nan"))
    return TrainReport(
        method=method, name=f"{tr.name}+{method}", steps=state.global_step - start.step,
        global_step=state.global_step, seconds=seconds, tokens=int(state.num_input_tokens_seen - start.tokens),
        peak_memory_mb=mem.peak_mb, memory_kind=mem.kind, final_loss=float(final_loss), log_history=history,
        eval_metrics={k: float(v) for k, v in eval_metrics.items() if isinstance(v, (int, float))},
        resumed_from=resume, output_dir=str(out), device=str(trainer.args.device), setup_seconds=setup_seconds,
        info={**config, "examples": len(rows), "dropped_too_long": dropped, "bf16": bf16,
              "trainable_parameters": trainable_params, "total_parameters": total_params, "merged": bool(
                  tr.peft_config is not None and merge)},
        model=trained, tokenizer=tok)


# --------------------------------------------------------------------------- reference log-probs, once
#: (hash of the reference weights, truncation settings, token ids of one pair) -> reference log-probs
_REF_LOGPS: dict[tuple, tuple[float, float]] = {}
_REF_COUNTS = {"reused": 0, "computed": 0}
_MEMO_TRAINER: Any = None


def ref_logps_cache_info() -> dict[str, int]:
    """How many pairs' reference log-probabilities :func:`dpo` reused and computed in this process."""
    return {"pairs cached": len(_REF_LOGPS), **_REF_COUNTS}


def _memo_dpo_trainer() -> Any:
    """TRL's ``DPOTrainer`` with the reference log-probabilities remembered per pair (module docstring).

    Written here because TRL's cache keys on a dataset's cache file, which an in-memory dataset
    does not have; pairs seen before are not computed again, new ones go through TRL's own code."""
    global _MEMO_TRAINER
    if _MEMO_TRAINER is not None:
        return _MEMO_TRAINER
    from datasets import Dataset, concatenate_datasets
    from trl import DPOTrainer

    class MemoRefDPOTrainer(DPOTrainer):
        def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
            a = self.args
            settings = (self._precompute_model_hash, a.max_length, a.truncation_mode, bool(a.bf16),
                        getattr(self, "ld_alpha", None))
            ids = dataset.select_columns(["prompt_ids", "chosen_ids", "rejected_ids"]).to_list()
            keys = [settings + (tuple(r["prompt_ids"]), tuple(r["chosen_ids"]), tuple(r["rejected_ids"]))
                    for r in ids]
            first: dict[tuple, int] = {}
            for i, k in enumerate(keys):
                if k not in _REF_LOGPS:
                    first.setdefault(k, i)
            if first:
                done = super()._precompute_ref_logps(dataset.select(sorted(first.values())), name, batch_size)
                for i, c, r in zip(sorted(first.values()), done["ref_chosen_logps"], done["ref_rejected_logps"]):
                    _REF_LOGPS[keys[i]] = (float(c), float(r))
            _REF_COUNTS["computed"] += len(first)
            _REF_COUNTS["reused"] += len(keys) - len(first)
            cols = {"ref_chosen_logps": [_REF_LOGPS[k][0] for k in keys],
                    "ref_rejected_logps": [_REF_LOGPS[k][1] for k in keys]}
            return concatenate_datasets([dataset, Dataset.from_dict(cols)], axis=1)

    _MEMO_TRAINER = MemoRefDPOTrainer
    return _MEMO_TRAINER


def dpo(
    model: Any,
    pairs: Iterable[dict],
    *,
    beta: float = 0.1,
    learning_rate: float | None = None,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: int = 8,
    grad_accum: int = 1,
    max_length: int | None = 128,
    rpo_alpha: float | None = None,
    loss_type: str = "sigmoid",
    precompute_ref_log_probs: bool = True,
    ref_batch_size: int | None = 32,
    lora: bool = True,
    r: int = 16,
    lora_alpha: int | None = None,
    merge: bool = True,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    eval_pairs: Iterable[dict] | None = None,
    eval_every: int | None = None,
    log_every: int = 1,
    save_every: int | None = None,
    save_total_limit: int = 2,
    system: str | None = None,
    gradient_checkpointing: bool = False,
    bf16: bool | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainReport:
    """Direct Preference Optimization with :class:`trl.DPOTrainer`; returns a :class:`TrainReport`.

    Args:
        model: a bundled short name, hub id or local path; a :class:`Trainable`; or an ``LM`` (trained in place).
        pairs: ``{"prompt", "chosen", "rejected"}`` dicts; the prompt is plain user text (or a list of
            messages), rendered as ``LM.render`` does; chosen and rejected are reply texts.
        beta: DPO's beta: how far the policy may move from the reference (higher: less).
        learning_rate: AdamW's peak rate (default :data:`DEFAULT_LR`: 1e-4 with LoRA, 1e-5 without).
        epochs, max_steps: train for ``epochs`` passes, or exactly ``max_steps`` optimizer steps.
        batch_size, grad_accum: pairs per forward pass, and passes per optimizer step.
        max_length: tokens of prompt plus reply kept (longer ones are cut at the end); pairs whose prompt
            alone fills it are left out (all of them: ``ValueError``).
        rpo_alpha: add the RPO term, ``rpo_alpha`` times the NLL of the chosen reply (TRL 1.16 spells it
            ``loss_type=["sigmoid", "sft"]`` with ``loss_weights=[1, rpo_alpha]``).
        loss_type: TRL's DPO loss (``"sigmoid"``, ``"ipo"``, ``"hinge"``, ...).
        precompute_ref_log_probs: compute the reference model's log-probs once before training (cheaper
            on CPU; with full fine-tuning no second model is kept in memory), and reuse them for pairs
            an earlier run in this process already computed with the same weights.
        ref_batch_size: rows per forward pass when precomputing them (no gradients, so a larger batch
            than ``batch_size`` fits, and fewer passes cost less on a CPU). ``None``: the evaluation
            batch size (``batch_size``).
        lora, r, lora_alpha: LoRA adapters of rank ``r`` on all linear layers, or full fine-tuning.
        merge: merge the LoRA weights into the returned model (plain transformers model, faster to
            generate with); ``False`` returns the PEFT model.
        output_dir: where checkpoints go (default: a folder named by the settings under
            ``<outputs>/train``); a second call with the same settings resumes from its newest checkpoint.
        seed: seeds model (LoRA) initialisation and data order.
        eval_pairs: held-out pairs: evaluated after training (``report.eval_metrics``) and, with
            ``eval_every``, every that many steps.
        log_every: a log entry every this many steps.
        save_every: a checkpoint every this many steps (default: five per run; the last step always);
            ``0`` writes none (nothing to resume from, e.g. for timing).
        save_total_limit: how many checkpoints to keep.
        system: a system prompt for every pair (default: the template's own).
        gradient_checkpointing: trade compute for memory (off: sequences here are short).
        bf16: bfloat16 autocast (default: on for a GPU that supports it, off on CPU).
        device: ``"cpu"`` to keep off a GPU (default: the best available).
        stop_after: stop after this many steps in this call, without saving, as a kill would (to
            demonstrate resuming).
        progress: show progress bars.
    """
    pairs = _check_rows(pairs, ("prompt", "chosen", "rejected"), "pairs")  # before the slow imports
    if eval_pairs is not None:
        eval_pairs = _check_rows(eval_pairs, ("prompt", "chosen", "rejected"), "eval_pairs")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    losses = [loss_type] if isinstance(loss_type, str) else list(loss_type)
    weights = None
    if rpo_alpha is not None:
        if rpo_alpha < 0:
            raise ValueError(f"rpo_alpha must be >= 0, got {rpo_alpha}")
        losses, weights = losses + ["sft"], [1.0] * len(losses) + [float(rpo_alpha)]
    from trl import DPOConfig

    return _run("dpo", model, preference_rows, pairs, eval_pairs, learning_rate=learning_rate, epochs=epochs,
                max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
                lora=lora, r=r, lora_alpha=lora_alpha, merge=merge, output_dir=output_dir, seed=seed,
                eval_every=eval_every, log_every=log_every, save_every=save_every,
                save_total_limit=save_total_limit, system=system, gradient_checkpointing=gradient_checkpointing,
                bf16=bf16, device=device, stop_after=stop_after, progress=progress,
                method_config={"beta": beta, "loss_type": losses, "loss_weights": weights,
                               "precompute_ref_log_probs": precompute_ref_log_probs},
                trainer_cls=_memo_dpo_trainer(), config_cls=DPOConfig,
                config_kwargs={"beta": beta, "loss_type": losses, "loss_weights": weights,
                               "precompute_ref_log_probs": precompute_ref_log_probs,
                               "precompute_ref_batch_size": ref_batch_size})


def sft(
    model: Any,
    examples: Iterable[dict],
    *,
    learning_rate: float | None = None,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: int = 8,
    grad_accum: int = 1,
    max_length: int | None = 128,
    lora: bool = True,
    r: int = 16,
    lora_alpha: int | None = None,
    merge: bool = True,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    eval_examples: Iterable[dict] | None = None,
    eval_every: int | None = None,
    log_every: int = 1,
    save_every: int | None = None,
    save_total_limit: int = 2,
    system: str | None = None,
    gradient_checkpointing: bool = False,
    bf16: bool | None = None,
    device: str | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> TrainReport:
    """Supervised fine-tuning with :class:`trl.SFTTrainer`, loss on the reply only; returns a :class:`TrainReport`.

    Args:
        model: a bundled short name, hub id or local path; a :class:`Trainable`; or an ``LM`` (trained in place).
        examples: ``{"prompt", "completion"}`` dicts; the prompt is rendered as ``LM.render`` does and
            the completion as the assistant turn (ending with the end-of-turn token).
        learning_rate: AdamW's peak rate (default :data:`DEFAULT_LR`: 2e-4 with LoRA, 2e-5 without).
        eval_examples: held-out examples, evaluated after training (and every ``eval_every`` steps).

    The other arguments are those of :func:`dpo`.
    """
    examples = _check_rows(examples, ("prompt", "completion"), "examples")  # before the slow imports
    if eval_examples is not None:
        eval_examples = _check_rows(eval_examples, ("prompt", "completion"), "eval_examples")
    from trl import SFTConfig, SFTTrainer

    return _run("sft", model, completion_rows, examples, eval_examples, learning_rate=learning_rate,
                epochs=epochs, max_steps=max_steps, batch_size=batch_size, grad_accum=grad_accum,
                max_length=max_length, lora=lora, r=r, lora_alpha=lora_alpha, merge=merge, output_dir=output_dir,
                seed=seed, eval_every=eval_every, log_every=log_every, save_every=save_every,
                save_total_limit=save_total_limit, system=system, gradient_checkpointing=gradient_checkpointing,
                bf16=bf16, device=device, stop_after=stop_after, progress=progress, method_config={},
                trainer_cls=SFTTrainer, config_cls=SFTConfig,
                config_kwargs={"completion_only_loss": True, "packing": False})
