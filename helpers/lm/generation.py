"""Batched chat generation, structured (JSON) output and perplexity.

>>> lm = LM.load("smollm2-135m")                     # or a hub id / local path
>>> outs = lm.chat(["Name a fruit.", "Name a colour."], max_new_tokens=16, seed=0)
>>> outs[0].text, lm.last_stats.tokens_per_second

Batching: prompts are sorted by length, cut into batches and left-padded, so the model
wastes little work on padding. On CUDA the model runs in half precision and the default
batch is larger; notebooks need not change.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

import torch

from helpers.core.textutil import code_blocks

Message = dict[str, str]
Conversation = Union[str, Sequence[Message]]


@dataclass
class Generation:
    """One generated reply."""

    text: str
    prompt_tokens: int
    new_tokens: int
    finish_reason: str  # "stop" (end-of-turn token), "length" (hit max_new_tokens), "error" (server failed)


@dataclass
class GenerationStats:
    """Token counts and speed of one :meth:`LM.chat` call."""

    n: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    truncated: int = 0  # replies that hit max_new_tokens
    failed: int = 0  # requests a server engine could not answer (finish_reason "error")

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per wall-clock second (all sequences together)."""
        return self.new_tokens / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        failed = f", {self.failed} FAILED" if self.failed else ""
        return (f"{self.n} replies, {self.new_tokens} new tokens in {self.seconds:.1f}s "
                f"= {self.tokens_per_second:.1f} tok/s (batch {self.batch_size}, {self.truncated} hit the length "
                f"limit{failed})")


def generator_id(lm: Any) -> str:
    """What produces an LM-like object's text, for cache keys (:attr:`LM.generator_id`; for other
    objects with a ``model``, that model's path). Never loads a model."""
    gid = getattr(lm, "generator_id", None)
    if isinstance(gid, str):
        return gid
    return str(getattr(getattr(lm, "model", None), "name_or_path", "") or "")


def auto_engine(name: str, device: str | None = None) -> str:
    """The faster engine for ``name`` here: ``"llama.cpp"`` for a bundled LM or ``.gguf`` file when
    no GPU is asked for or present and ``xllamacpp`` is installed, else ``"transformers"``.

    On 2 CPU cores llama.cpp decodes the bundled Qwen2.5-Coder-0.5B several times faster than the
    batched transformers backend (``benchmarks/bench_generation.py``); on a GPU, transformers (or a
    vLLM server) is the fast one.
    """
    import importlib.util

    from helpers.core.env import pick_device
    from helpers.core.models import get_spec

    if (device or pick_device()) != "cpu" or importlib.util.find_spec("xllamacpp") is None:
        return "transformers"
    spec = get_spec(name)
    is_gguf = (spec is not None and spec.kind == "lm") or str(name).endswith(".gguf")
    return "llama.cpp" if is_gguf else "transformers"


def as_messages(conv: Conversation, system: str | None = None) -> list[Message]:
    """A plain string becomes one user turn; an optional system prompt goes first."""
    if isinstance(conv, str):
        msgs = [{"role": "user", "content": conv}]
    else:
        msgs = [dict(m) for m in conv]
        for m in msgs:
            if "role" not in m or "content" not in m:
                raise ValueError(f"each message needs 'role' and 'content', got {m!r}")
    if system and (not msgs or msgs[0]["role"] != "system"):
        msgs = [{"role": "system", "content": system}] + msgs
    return msgs


class _StopWhen:
    """Stops a row of a batched ``generate`` once ``fn(text so far)`` is true, and remembers when.

    Checked after every new token on the rows still running (decoding a few hundred tokens
    costs far less than one forward pass). ``stopped_at[row]`` is the number of new tokens the
    row had when it stopped; rows it did not stop are absent.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, fn: Callable[[str], bool], prefix: str = "") -> None:
        self.tokenizer, self.prompt_len, self.fn, self.prefix = tokenizer, prompt_len, fn, prefix
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        new = input_ids[:, self.prompt_len:]
        for row in range(input_ids.shape[0]):
            if row in self.stopped_at:
                done[row] = True
            elif self.fn(self.prefix + self.tokenizer.decode(new[row], skip_special_tokens=True)):
                self.stopped_at[row] = new.shape[1]
                done[row] = True
        return done


class LM:
    """A causal LM with its tokenizer, ready for batched chat generation.

    Args:
        model: a transformers causal LM (already on its device), or ``None`` when ``engine``
            generates and ``model_loader`` loads the transformers model on first need
            (perplexity and next-token log-probabilities stay on transformers).
        tokenizer: its tokenizer (left padding is set here).
        name: the name it was loaded by.
        engine: a :class:`helpers.lm.server.ServerEngine` that generates instead of ``model``.
        model_loader: returns ``(model, tokenizer)`` when ``model`` is first needed.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "model", *, engine: Any = None,
                 model_loader: Callable[[], tuple[Any, Any]] | None = None) -> None:
        if model is None and model_loader is None:
            raise ValueError("LM needs a model or a model_loader")
        self._model = model
        self._model_loader = model_loader
        self.engine = engine
        self.tokenizer = tokenizer
        self.name = name
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.last_stats = GenerationStats()
        self.stop_ids = self._stop_ids()

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, name: str = "smollm2-135m", device: str | None = None, dtype: Any = None, *,
             engine: str = "transformers", slots: int | None = None) -> "LM":
        """Load a bundled short name, a hub id or a local path (see :mod:`helpers.core.models`).

        Args:
            engine: what generates. ``"transformers"`` (default): the model runs in this process with
                PyTorch (any device). ``"auto"``: llama.cpp for a GGUF model on a machine without a
                GPU (where it is faster, see :func:`auto_engine`), transformers otherwise. ``"llama.cpp"``: llama.cpp's server runs the GGUF file itself
                (bundled names or a ``.gguf`` path) on this machine's CPU; faster on a CPU, see
                :mod:`helpers.lm.server`. A URL such as ``"http://localhost:8000/v1"``: an
                OpenAI-compatible server already running (vLLM, SGLang, llama.cpp, Ollama) that
                serves ``name``. With a server engine, ``perplexity`` and ``next_token_logprobs``
                load the transformers model on first use (a remote server answers
                ``next_token_logprobs`` of chosen tokens itself).
            slots: sequences a llama.cpp server decodes together, or requests in flight to a URL.

        Seeds: with transformers on a CPU the same ``seed`` gives the same replies on the same machine.
        A llama.cpp server decoding several slots does not repeat itself exactly: a sequence's numbers
        depend on which others share its batch, so the same seed gives different samples from run to
        run (two full runs of chapter 01 drew different instruction sets). Compare methods with
        intervals rather than by re-running; the resumable jobs keep what was generated.
        """
        from helpers.core.models import load_causal_lm

        if engine == "auto":
            engine = auto_engine(name, device)
        if engine == "transformers":
            model, tok = load_causal_lm(name, device=device, dtype=dtype)
            return cls(model, tok, name)
        if engine != "llama.cpp" and not engine.startswith(("http://", "https://")):
            raise ValueError(f"engine must be 'transformers', 'llama.cpp' or a server URL, not {engine!r}")
        from helpers.core.models import load_lm_tokenizer
        from helpers.lm import server as srv

        tok = load_lm_tokenizer(name)
        loader = lambda: load_causal_lm(name, device=device, dtype=dtype)  # noqa: E731
        if engine == "llama.cpp":
            from helpers.core.models import lm_gguf_file

            llama = srv.LlamaCppServer(lm_gguf_file(name), slots=slots)
            eng = srv.ServerEngine(llama.base_url, name, concurrency=llama.slots, flavour="llama.cpp", server=llama)
        else:
            eng = srv.ServerEngine(engine, name, concurrency=slots or srv.default_slots())
        return cls(None, tok, name, engine=eng, model_loader=loader)

    @property
    def model(self) -> Any:
        """The transformers model (loaded on first use when a server engine generates)."""
        if self._model is None:
            model, _ = self._model_loader()  # type: ignore[misc]
            self._model = model
        return self._model

    @property
    def backend(self) -> str:
        """What generates, in words."""
        if self.engine is not None:
            return self.engine.describe()
        return f"transformers on {self.device}"

    @property
    def generator_id(self) -> str:
        """What produces the text, for cache keys of resumable jobs: the transformers model's path,
        or the engine and the model it serves (different engines sample different replies)."""
        if self.engine is not None:
            return self.engine.generator_id
        return str(getattr(self._model, "name_or_path", "") or "")

    @property
    def device(self) -> torch.device:
        if self._model is None:  # a server engine generates; the transformers model is not loaded
            return torch.device("cpu")
        return next(self._model.parameters()).device

    @property
    def default_batch_size(self) -> int:
        """32 on a GPU, 16 on CPU (enough to fill 2 to 8 cores without wasting memory); a server
        engine's number of slots."""
        if self.engine is not None:
            return self.engine.concurrency
        return 32 if self.device.type == "cuda" else 16

    def close(self) -> None:
        """Stop a server engine this LM started (a no-op for the transformers backend)."""
        if self.engine is not None:
            self.engine.close()

    def _stop_ids(self) -> list[int]:
        ids = set()
        gen_config = getattr(self._model, "generation_config", None)
        for tok_id in (self.tokenizer.eos_token_id, getattr(gen_config, "eos_token_id", None)):
            if isinstance(tok_id, int):
                ids.add(tok_id)
            elif isinstance(tok_id, (list, tuple)):
                ids.update(i for i in tok_id if isinstance(i, int))
        for special in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
            tid = self.tokenizer.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        return sorted(ids)

    # ------------------------------------------------------------------ prompts
    def render(self, conv: Conversation, system: str | None = None) -> str:
        """The exact prompt string the model sees for one conversation."""
        return self.tokenizer.apply_chat_template(
            as_messages(conv, system), add_generation_prompt=True, tokenize=False
        )

    def token_ids(self, text: str) -> list[int]:
        """The token ids of ``text``, without special tokens added."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.token_ids(text))

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def chat(
        self,
        conversations: Iterable[Conversation],
        *,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 1.0,
        top_k: int | None = None,
        do_sample: bool | None = None,
        repetition_penalty: float | None = None,
        seed: int | None = None,
        batch_size: int | None = None,
        system: str | None = None,
        progress: bool = True,
        desc: str | None = None,
        prefix: str = "",
        stop_when: Callable[[str], bool] | None = None,
    ) -> list[Generation]:
        """Generate one reply per conversation, in input order.

        Args:
            conversations: strings (one user turn each) or lists of ``{"role", "content"}``.
            max_new_tokens: length limit per reply.
            temperature, top_p, top_k: sampling settings; ``temperature=0`` means greedy.
            do_sample: force sampling on/off (default: on when ``temperature > 0``).
            seed: seed for this call, so the same call gives the same replies.
            batch_size: sequences per forward pass (default :attr:`default_batch_size`).
            system: optional system prompt added to every conversation.
            progress: show a progress bar.
            prefix: text the assistant's reply is forced to start with ("prefill", e.g. ``"{"``
                for JSON); it is part of the returned text.
            stop_when: a test on the reply so far (``prefix`` included); a reply stops as soon as it
                is true, with ``finish_reason="stop"``. Use it to skip what a model writes after the
                part you need (e.g. prose after the code blocks), which is most of the time saved
                when the whole batch has stopped.
        """
        from transformers import StoppingCriteriaList

        from tqdm.auto import tqdm

        prompts = [self.render(c, system) + prefix for c in conversations]
        if self.engine is not None:
            return self._chat_on_engine(prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                                        top_p=top_p, top_k=top_k, do_sample=do_sample,
                                        repetition_penalty=repetition_penalty, seed=seed, progress=progress,
                                        desc=desc, prefix=prefix, stop_when=stop_when)
        n = len(prompts)
        bs = batch_size or self.default_batch_size
        if do_sample is None:
            do_sample = temperature > 0
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                                      "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.stop_ids}
        if do_sample:
            gen_kwargs.update(temperature=max(temperature, 1e-5), top_p=top_p)
            gen_kwargs["top_k"] = top_k if top_k is not None else 0
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        if repetition_penalty:
            gen_kwargs["repetition_penalty"] = repetition_penalty
        if seed is not None:
            torch.manual_seed(seed)
            if torch.cuda.is_available():
                torch.cuda.manual_seed_all(seed)

        lengths = [self.count_tokens(p) for p in prompts]
        order = sorted(range(n), key=lambda i: -lengths[i])  # longest first: memory peaks early
        results: list[Generation | None] = [None] * n
        stats = GenerationStats(n=n, batch_size=bs)
        t0 = time.perf_counter()
        bar = tqdm(total=n, desc=desc or f"{self.name}", disable=not progress or n == 0, leave=False)
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            stopper = _StopWhen(self.tokenizer, enc["input_ids"].shape[1], stop_when, prefix) if stop_when else None
            out = self.model.generate(**enc, **gen_kwargs,
                                      **({"stopping_criteria": StoppingCriteriaList([stopper])} if stopper else {}))
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            for r, (row, i) in enumerate(zip(new, idx)):
                cut, reason = len(row), "length"
                for j, t in enumerate(row):
                    if t in self.stop_ids:
                        cut, reason = j + 1, "stop"
                        break
                if stopper and r in stopper.stopped_at and stopper.stopped_at[r] <= cut:
                    cut, reason = stopper.stopped_at[r], "stop"
                text = (prefix + self.tokenizer.decode(row[:cut], skip_special_tokens=True)).strip()
                results[i] = Generation(text, lengths[i], cut, reason)
                stats.new_tokens += cut
                stats.prompt_tokens += lengths[i]
                stats.truncated += reason == "length"
            bar.update(len(idx))
        bar.close()
        stats.seconds = time.perf_counter() - t0
        self.last_stats = stats
        return [r for r in results if r is not None]

    def _chat_on_engine(self, prompts: list[str], *, max_new_tokens: int, temperature: float, top_p: float,
                        top_k: int | None, do_sample: bool | None, repetition_penalty: float | None,
                        seed: int | None, progress: bool, desc: str | None, prefix: str,
                        stop_when: Callable[[str], bool] | None) -> list[Generation]:
        """:meth:`chat` through the server engine (same prompts, same results format)."""
        if do_sample is False:
            temperature = 0.0
        gens, stats = self.engine.complete(
            prompts, prompt_tokens=[self.count_tokens(p) for p in prompts], max_new_tokens=max_new_tokens,
            temperature=temperature, top_p=top_p, top_k=top_k, repetition_penalty=repetition_penalty, seed=seed,
            count_tokens=self.count_tokens, prefix=prefix, stop_when=stop_when, progress=progress,
            desc=desc or self.name)
        self.last_stats = stats
        if stats.failed:
            print(f"WARNING: {stats.failed} of {stats.n} requests to {self.engine.base_url} failed "
                  f"(last error: {getattr(self.engine, 'last_error', '?')}); their replies are empty with "
                  f"finish_reason='error'")
        return gens

    def ask(self, prompt: str, **kwargs: Any) -> str:
        """One prompt in, one reply text out (greedy unless ``temperature`` is given)."""
        kwargs.setdefault("temperature", 0.0)
        kwargs.setdefault("progress", False)
        return self.chat([prompt], **kwargs)[0].text

    # ------------------------------------------------------------------ structured output
    def chat_json(
        self,
        conversations: Iterable[Conversation],
        *,
        required_keys: Sequence[str] = (),
        **kwargs: Any,
    ) -> "JSONBatch":
        """Generate replies and parse each as JSON; failures are counted, never raised.

        Ask for JSON in the prompt (see :func:`json_instruction`). Each reply is parsed with
        :func:`extract_json`, then checked for ``required_keys``.
        """
        gens = self.chat(conversations, **kwargs)
        return parse_json_replies([g.text for g in gens], required_keys=required_keys,
                                  truncated=[g.finish_reason == "length" for g in gens])

    # ------------------------------------------------------------------ scoring
    @torch.inference_mode()
    def perplexity(self, texts: Sequence[str], *, batch_size: int | None = None, max_tokens: int = 512,
                   progress: bool = False) -> list[float]:
        """Perplexity of each text under the model (``nan`` for texts shorter than 2 tokens).

        Texts longer than ``max_tokens`` are scored on their first ``max_tokens`` tokens.
        """
        bs = batch_size or self.default_batch_size
        out: list[float] = [float("nan")] * len(texts)
        ids = [self.token_ids(t)[:max_tokens] for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(order), bs), disable=not progress, leave=False, desc="perplexity"):
            idx = [i for i in order[start:start + bs] if len(ids[i]) >= 2]
            if not idx:
                continue
            inp, mask, pos = _left_padded([ids[i] for i in idx], self.tokenizer.pad_token_id, self.device)
            logits = self.model(input_ids=inp, attention_mask=mask, position_ids=pos).logits[:, :-1]
            tgt = inp[:, 1:]
            nll = torch.nn.functional.cross_entropy(  # fused: no full log-softmax copy of the logits
                logits.reshape(-1, logits.shape[-1]).float(), tgt.reshape(-1), reduction="none").view(tgt.shape)
            m = mask[:, 1:].float() * mask[:, :-1].float()
            per = (nll * m).sum(-1) / m.sum(-1)
            for r, i in enumerate(idx):
                out[i] = float(math.exp(per[r].item()))
        return out

    @torch.inference_mode()
    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int] | None = None, *,
                            batch_size: int | None = None, progress: bool = False,
                            desc: str = "next-token log-probs") -> Any:
        """Log-probabilities of the token that would follow each prompt, as a numpy array.

        Each prompt is scored as it stands (render it first for a chat prompt; no special tokens
        are added), in left-padded batches sorted by length; rows come back in input order. Only
        the last position's logits are computed where the model allows it. With ``token_ids`` the
        result is ``(len(prompts), len(token_ids))`` (still normalised over the whole vocabulary),
        else ``(len(prompts), vocab)``.

        With a remote server engine (a URL) and ``token_ids``, the server answers (one request per prompt,
        its top 20 tokens; a token outside them gets ``-inf``); the full vocabulary needs the transformers
        model. A llama.cpp server started here on the CPU is not asked: scoring prompts is all prompt
        processing, where the batched transformers model was faster on 2 cores (0.85 s against 1.6 s per
        snippet for chapter 09's annotator, 2026-12-02); ``lm.engine.next_token_logprobs`` asks it anyway.
        """
        import numpy as np
        from tqdm.auto import tqdm

        ids = [self.token_ids(p) for p in prompts]
        if any(not row for row in ids):
            raise ValueError("next_token_logprobs needs non-empty prompts")
        engine = getattr(self, "engine", None)
        if (engine is not None and token_ids is not None and hasattr(engine, "next_token_logprobs")
                and getattr(engine, "server", None) is None):
            cols_list = [int(t) for t in token_ids]
            out, failed = engine.next_token_logprobs(
                list(prompts), cols_list, [self.tokenizer.decode([t]) for t in cols_list], progress=progress, desc=desc)
            if failed:
                raise RuntimeError(f"{failed} of {len(prompts)} log-prob requests failed: "
                                   f"{getattr(engine, 'last_error', '')}")
            return out
        bs = batch_size or self.default_batch_size
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        cols = None if token_ids is None else torch.as_tensor(list(token_ids), dtype=torch.long)
        out: Any = None
        for start in tqdm(range(0, len(order), bs), disable=not progress, leave=False, desc=desc):
            idx = order[start:start + bs]
            inp, mask, pos = _left_padded([ids[i] for i in idx], self.tokenizer.pad_token_id, self.device)
            kwargs = dict(input_ids=inp, attention_mask=mask, position_ids=pos)
            try:  # only the last position's logits are needed: skip the big vocabulary matmul elsewhere
                logits = self.model(**kwargs, logits_to_keep=1).logits
            except TypeError:  # models without logits_to_keep
                logits = self.model(**kwargs).logits
            logp = torch.log_softmax(logits[:, -1].float(), -1).cpu()
            if cols is not None:
                logp = logp[:, cols]
            if out is None:
                out = np.zeros((len(ids), logp.shape[-1]), dtype=np.float32)
            out[idx] = logp.numpy()
        if out is None:
            out = np.zeros((0, 0 if cols is None else len(cols)), dtype=np.float32)
        return out


def _left_padded(rows: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, ...]:
    """``(input_ids, attention_mask, position_ids)`` for token rows padded on the left, like generation.

    Positions count from 0 at each row's first real token, so a padded row scores as it would alone.
    """
    width = max(len(r) for r in rows)
    inp = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        inp[r, width - len(row):] = torch.as_tensor(list(row), dtype=torch.long)
        mask[r, width - len(row):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return inp.to(device), mask.to(device), pos.to(device)


# ---------------------------------------------------------------------- JSON parsing
@dataclass
class JSONResult:
    """One parsed reply: ``value`` on success, else ``error`` says why."""

    raw: str
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class JSONBatch:
    """Parsed replies plus a count of each failure reason."""

    results: list[JSONResult]
    failures: Counter = field(default_factory=Counter)

    @property
    def values(self) -> list[Any]:
        """The parsed values of the replies that succeeded."""
        return [r.value for r in self.results if r.ok]

    @property
    def failure_rate(self) -> float:
        return 1 - len(self.values) / len(self.results) if self.results else 0.0

    def report(self) -> str:
        n, ok = len(self.results), len(self.values)
        reasons = ", ".join(f"{k}: {v}" for k, v in self.failures.most_common()) or "none"
        return f"{ok}/{n} replies parsed ({self.failure_rate:.0%} failed; reasons: {reasons})"


def json_instruction(example: dict[str, Any]) -> str:
    """A sentence asking for exactly one JSON object shaped like ``example``."""
    return ("Reply with one JSON object and nothing else, with exactly these keys, like this:\n"
            + json.dumps(example, ensure_ascii=False))


_DECODER = json.JSONDecoder()


def extract_json(text: str) -> Any:
    """Parse the first JSON object or array in a model reply.

    Accepts code fences and prose around the JSON: each fenced block, then the whole reply, is
    tried as it stands, then ``json.JSONDecoder().raw_decode`` is run from each ``{`` or ``[`` in
    turn and the first value it decodes wins (text after it is ignored). Raises ``ValueError`` with
    a short reason (``"empty"``, ``"no json"``, ``"unbalanced"``, ``"invalid json"``) otherwise.
    """
    if not text or not text.strip():
        raise ValueError("empty")
    candidates = code_blocks(text) + [text]
    saw_open = False
    for cand in candidates:
        cand = cand.strip()
        try:
            return json.loads(cand)
        except json.JSONDecodeError:
            pass
        for k, ch in enumerate(cand):
            if ch in "{[":
                saw_open = True
                try:
                    return _DECODER.raw_decode(cand, k)[0]
                except json.JSONDecodeError:
                    continue
    raise ValueError("unbalanced" if saw_open and "}" not in text and "]" not in text
                     else "invalid json" if saw_open else "no json")


def parse_json_replies(texts: Sequence[str], required_keys: Sequence[str] = (),
                       truncated: Sequence[bool] | None = None) -> JSONBatch:
    """Parse many replies; count failures by reason instead of raising.

    Reasons: ``empty``, ``no json``, ``unbalanced``, ``invalid json``, ``not an object``,
    ``missing key``; a failed reply that also hit the length limit is counted as ``truncated``.
    """
    batch = JSONBatch([])
    for k, text in enumerate(texts):
        res = JSONResult(text)
        try:
            value = extract_json(text)
            if required_keys:
                if not isinstance(value, dict):
                    raise ValueError("not an object")
                absent = [key for key in required_keys if key not in value]
                if absent:
                    raise ValueError("missing key")
            res.value = value
        except ValueError as err:
            reason = str(err)
            if truncated is not None and truncated[k]:
                reason = "truncated"
            res.error = reason
            batch.failures[reason] += 1
        batch.results.append(res)
    return batch
