"""What a training run did: :class:`TrainReport`, shared by :mod:`helpers.train.finetune` and :mod:`helpers.train.tiny`.

>>> report = finetune.dpo("smollm2-135m", pairs, max_steps=8)
>>> print(report.summary())
>>> report.series("rewards/margins")        # [(step, value), ...] for a plot
>>> report.lm().chat(["Say hi."])           # generate with the trained model

:class:`PeakMemory` measures the peak memory of a block: the CUDA allocator's peak on a GPU,
the process's resident memory (RSS, sampled by a background thread) on CPU.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainReport", "PeakMemory"]


@dataclass
class TrainReport:
    """The result of one training call.

    Attributes:
        method: ``"dpo"``, ``"sft"`` or ``"tiny"``.
        name: what the trained model is called (the base model's name plus the method).
        steps: optimizer steps taken in *this* call (a resumed run counts only the new ones).
        global_step: optimizer steps in total, including those of the checkpoint it resumed from.
        seconds: wall-clock seconds of the training loop in this call (model loading and data
            preparation are in :attr:`setup_seconds`).
        tokens: tokens in the training batches of this call (padding not counted).
        peak_memory_mb: peak memory during training, in MiB (see :attr:`memory_kind`).
        memory_kind: ``"cuda"`` (``torch.cuda.max_memory_allocated``) or ``"rss"`` (process resident
            memory, sampled every 50 ms).
        final_loss: the last logged training loss (``nan`` when no step was logged).
        log_history: one dict per logged step (``step``, ``loss``, ``learning_rate`` and, for DPO,
            ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``, ``rewards/margins``,
            ``logps/chosen``, ``logps/rejected``; evaluation entries carry ``eval_*`` keys). A resumed
            run includes the entries of the run it resumed.
        eval_metrics: the metrics of the final evaluation (empty when there was none).
        resumed_from: the checkpoint this call resumed from, or ``None``.
        output_dir: where the checkpoints are.
        device: the device it trained on.
        setup_seconds: seconds spent loading the model and preparing the data.
        info: anything else worth knowing (trainable parameters, settings).
        model: the trained model (``repr`` hides it).
        tokenizer: its tokenizer.
    """

    method: str
    name: str
    steps: int
    global_step: int
    seconds: float
    tokens: int
    peak_memory_mb: float
    memory_kind: str
    final_loss: float
    log_history: list[dict[str, Any]] = field(default_factory=list)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None
    output_dir: str | None = None
    device: str = "cpu"
    setup_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)

    @property
    def tokens_per_second(self) -> float:
        """Training tokens per wall-clock second in this call (``nan`` when nothing ran)."""
        return self.tokens / self.seconds if self.seconds > 0 and self.steps > 0 else float("nan")

    @property
    def steps_per_second(self) -> float:
        """Optimizer steps per wall-clock second in this call (``nan`` when nothing ran)."""
        return self.steps / self.seconds if self.seconds > 0 and self.steps > 0 else float("nan")

    @property
    def losses(self) -> list[float]:
        """The logged training losses, in step order."""
        return [float(e["loss"]) for e in self.log_history if "loss" in e]

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` for every log entry that has ``key`` (e.g. ``"rewards/margins"``)."""
        return [(int(e.get("step", i)), float(e[key])) for i, e in enumerate(self.log_history) if key in e]

    def last(self, key: str, default: float = float("nan")) -> float:
        """The last logged value of ``key`` (``default`` when it was never logged)."""
        values = self.series(key)
        return values[-1][1] if values else default

    def lm(self, name: str | None = None):
        """The trained model as a :class:`helpers.lm.generation.LM`, ready for ``chat``.

        Only for transformers models (DPO and SFT runs); a tiny model generates with
        :func:`helpers.train.tiny.generate`.
        """
        if self.method == "tiny":
            raise TypeError("a tiny model is not a transformers model: use helpers.train.tiny.generate(model, tok, ...)")
        from helpers.lm.generation import LM

        return LM(self.model, self.tokenizer, name or self.name)

    def summary(self) -> str:
        """A few lines for a notebook: what ran, how fast, how much memory, how the loss moved."""
        losses = self.losses
        lines = [f"{self.method} {self.name}: {self.steps} steps in this call "
                 f"(step {self.global_step} in total{', resumed from ' + self.resumed_from if self.resumed_from else ''})"]
        lines.append(f"  {self.seconds:.1f}s training + {self.setup_seconds:.1f}s setup on {self.device}; "
                     f"{self.tokens} tokens = {_fmt(self.tokens_per_second)} tok/s, "
                     f"{_fmt(self.steps_per_second, 3)} steps/s; peak memory {self.peak_memory_mb:.0f} MiB "
                     f"({self.memory_kind})")
        if losses:
            lines.append(f"  loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} logged steps")
        for key in ("rewards/accuracies", "rewards/margins", "rewards/chosen", "rewards/rejected"):
            if self.series(key):
                lines.append(f"  {key}: {self.last(key):.4f} (last logged)")
        if self.eval_metrics:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in self.eval_metrics.items()
                              if isinstance(v, (int, float)) and not any(s in k for s in _NOT_SHOWN))
            lines.append(f"  eval: {shown}")
        if self.output_dir:
            lines.append(f"  output (checkpoints) in {self.output_dir}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


#: Evaluation metrics :meth:`TrainReport.summary` leaves out (they stay in ``eval_metrics``).
_NOT_SHOWN = ("runtime", "per_second", "num_tokens", "num_input_tokens", "epoch", "entropy", "logits/", "logps/",
              "rewards/chosen", "rewards/rejected")


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"


class PeakMemory:
    """Context manager: the peak memory of the block it wraps, in MiB.

    On CUDA it resets and reads ``torch.cuda.max_memory_allocated`` (``kind = "cuda"``); elsewhere
    a daemon thread samples the process's RSS with psutil every ``interval`` seconds
    (``kind = "rss"``), so the peak of a forward/backward pass between steps is seen too.

    Args:
        device: the device the work runs on (``"cuda"``, ``"cuda:1"``, ``"cpu"``, ...).
        interval: seconds between RSS samples.
    """

    def __init__(self, device: str = "cpu", interval: float = 0.05) -> None:
        self.device = str(device)
        self.interval = interval
        self.kind = "cuda" if self.device.startswith("cuda") else "rss"
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while True:
            self.peak_mb = max(self.peak_mb, proc.memory_info().rss / 2**20)
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> "PeakMemory":
        if self.kind == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            import psutil

            self.peak_mb = psutil.Process().memory_info().rss / 2**20
            self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-rss")
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.kind == "cuda":
            import torch

            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
