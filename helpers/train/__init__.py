"""Training on synthetic data (chapters 07-10, 16).

| module | what it does |
|---|---|
| `finetune` | TRL/PEFT fine-tuning of the bundled instruct LMs: `dpo` (preference pairs) and `sft` (prompt/completion), LoRA or full, resumable from checkpoints, sized for 2 CPU cores |
| `tiny` | a tiny decoder-only transformer (1-5M parameters) written plainly in torch, a character tokenizer, a readable training loop with exact resume, `generate` and `perplexity` |
| `preference` | preference pairs from verifier verdicts (every prompt without a pair counted), the selective best-margin set, a strict JSON-shape verifier, arithmetic items with computed answers, summed log-probs and the DPO implicit reward on held-out pairs for any trained model |
| `flywheel` | generate-verify-train rounds of a tiny model on column-wise addition (program check, self-consistency vote, keep everything, oracle) and model collapse across generations (replace, accumulate, accumulate + filter), with distinct-n and tail-share metrics |
| `curriculum` | difficulty scores for synthetic additions (known by construction, a teacher's loss, length), label noise known by construction, training orders (random, easy-to-hard, hard-to-easy with linear pacing, an anneal on the clean slice), a resumable grid of budgets x noise x seeds, and two-level (seed, item) bootstrap verdicts |
| `textbooks` | phi-1 in miniature: a pool of real Python snippets with package and licence, an educational-value annotator read from next-token digit probabilities, the F1 threshold of a classifier, a family of exercises with tests computed by code, textbook prompts and lesson extraction, n-gram contamination, equal-budget corpora, and pre-train-then-fine-tune runs of the tiny model in parallel processes |
| `distill` | soft-label distillation on small tasks: MLP teacher and student, Hinton et al.'s temperature loss, a FitNets hint loss, full-batch training in seconds, stratified subsets and a left-out class (chapter 16) |
| `report` | `TrainReport`, what every training call returns (steps, tokens/s, peak memory, losses, log history, the trained model) |

A stage package imports only :mod:`helpers.core`, :mod:`helpers.lm` and its own modules
(``tests/test_layout.py`` enforces it). Submodules load on first use, so importing this
package is cheap (no torch, transformers or TRL until a module is touched).
"""
from __future__ import annotations

from helpers.core.lazy import lazy_modules

__all__ = ["curriculum", "distill", "finetune", "flywheel", "preference", "report", "textbooks", "tiny"]
__getattr__, __dir__ = lazy_modules(__name__, __all__)
