"""Generation through an inference server: llama.cpp on a CPU, vLLM, SGLang or Ollama elsewhere.

Every one of these engines speaks the OpenAI-compatible HTTP API, so the course talks to all of
them the same way (:class:`ServerEngine`, on the official ``openai`` client). :class:`LM` uses it
when it is loaded with ``engine="llama.cpp"`` or ``engine="http://host:port/v1"``; notebooks then
call ``lm.chat`` exactly as before and get the same :class:`~helpers.lm.generation.Generation`
results (text, prompt and new token counts, finish reason).

>>> lm = LM.load("qwen-coder-0.5b", engine="llama.cpp")       # llama.cpp server on loopback
>>> lm = LM.load("Qwen/Qwen2.5-Coder-0.5B-Instruct", engine="http://localhost:8000/v1")   # vLLM

Why llama.cpp on a CPU: its quantised kernels decode the bundled GGUF models directly (no
de-quantisation to float32), and its server batches the requests of several "slots" together
(continuous batching). ``benchmarks/bench_generation.py`` measures it against the transformers
backend on the same prompts. :class:`LlamaCppServer` starts llama.cpp's own C++ server inside this
process from the prebuilt ``xllamacpp`` wheel, so nothing is compiled and no port is exposed
beyond 127.0.0.1.

Prompts are rendered here with the model's own chat template (the same text the transformers
backend feeds its model) and sent to the raw ``/v1/completions`` route, so both backends see
identical prompts and an assistant prefix ("prefill") works on any server. Reply ``i`` of a call
is sampled with ``seed + i``: a reply does not depend on which other prompts shared its batch.

Failures are counted, never hidden: a request that still fails after the client's retries gives a
``Generation`` with ``finish_reason="error"`` and empty text, and ``GenerationStats.failed``
counts them.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from helpers.lm.generation import Generation, GenerationStats

#: Generated tokens per slot of context: prompt plus reply must fit in ``n_ctx / slots``.
DEFAULT_CTX_PER_SLOT = 2048


def default_slots() -> int:
    """Parallel sequences for a local llama.cpp server: 8 (the measured sweet spot on 2 cores).

    More slots batch more sequences per decoding step; on a CPU the gain flattens once the
    matrix products are compute-bound (see ``benchmarks/bench_generation.py``).
    """
    return 8


class LlamaCppServer:
    """llama.cpp's HTTP server for one GGUF file, running in this process on 127.0.0.1.

    Args:
        gguf: path of the GGUF model file.
        slots: sequences decoded together (llama.cpp's ``--parallel``).
        ctx_per_slot: context length of each slot (prompt plus reply).
        threads: CPU threads (default: every core this process may use).
        verbose: keep llama.cpp's own log on stderr (off: only errors).

    The server stops when :meth:`close` is called or the object is garbage-collected.

    Give it cores of its own: llama.cpp's threads meet at a barrier after every operation, so when
    other heavy jobs share the cores it slows down far more than PyTorch does (measured here with
    two other training jobs on the same 2 cores: SmolLM2 at 3 tokens/s instead of 111).
    """

    def __init__(self, gguf: str | Path, *, slots: int | None = None, ctx_per_slot: int = DEFAULT_CTX_PER_SLOT,
                 threads: int | None = None, verbose: bool = False) -> None:
        try:
            import xllamacpp
        except ImportError as err:  # the named package is what to install
            raise ImportError("the llama.cpp engine needs the `xllamacpp` package (a prebuilt llama.cpp wheel): "
                              "`pip install xllamacpp` (or run `make setup`)") from err
        gguf = Path(gguf)
        if not gguf.is_file():
            raise FileNotFoundError(f"GGUF file {gguf} does not exist")
        self.gguf = gguf
        self.slots = slots or default_slots()
        self.threads = threads or len(os.sched_getaffinity(0))
        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_parallel = self.slots
        params.n_ctx = self.slots * ctx_per_slot
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.port = 0  # any free port on loopback
        params.warmup = True
        if not verbose:
            params.verbosity = -1  # errors only
        t0 = time.perf_counter()
        self._server = xllamacpp.Server(params)
        self.load_seconds = time.perf_counter() - t0
        self.base_url = self._server.listening_address.rstrip("/") + "/v1"

    def close(self) -> None:
        """Stop the server and free its memory."""
        self._server = None

    def __repr__(self) -> str:
        return f"LlamaCppServer({self.gguf.name}, {self.slots} slots, {self.threads} threads, {self.base_url})"


@dataclass
class _Request:
    index: int
    prompt: str
    prompt_tokens: int
    seed: int | None


class ServerEngine:
    """Sends batches of rendered prompts to an OpenAI-compatible ``/v1/completions`` route.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080/v1``.
        model: the model name the server expects in each request.
        concurrency: requests in flight at once (set it to the server's slots).
        flavour: ``"llama.cpp"`` sends llama.cpp's own sampling fields (``top_k``, ``min_p``,
            ``repeat_penalty``) so its sampler matches the transformers backend (no top-k or
            min-p cut unless asked); ``"openai"`` sends only what vLLM and SGLang also accept.
        server: the :class:`LlamaCppServer` this engine owns, if any (kept alive with it).
        timeout: seconds per request.

    Attributes:
        extra: fields added to every request body (e.g. ``{"ignore_eos": True}``, which the
            benchmark uses so that every engine generates exactly the same number of tokens).
    """

    def __init__(self, base_url: str, model: str, *, concurrency: int = 8, flavour: str = "openai",
                 server: LlamaCppServer | None = None, timeout: float = 900.0) -> None:
        try:
            from openai import OpenAI
        except ImportError as err:
            raise ImportError("the server engine needs the `openai` client: `pip install openai`") from err
        if flavour not in ("openai", "llama.cpp"):
            raise ValueError(f"flavour must be 'openai' or 'llama.cpp', not {flavour!r}")
        self.base_url = base_url
        self.model = model
        self.concurrency = max(1, int(concurrency))
        self.flavour = flavour
        self.server = server
        self.extra: dict[str, Any] = {}
        self.client = OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
                             timeout=timeout, max_retries=2)

    def __repr__(self) -> str:
        return f"ServerEngine({self.flavour}, {self.base_url}, model={self.model!r}, {self.concurrency} in flight)"

    @property
    def generator_id(self) -> str:
        """The engine and the model it serves (no port: it changes on every start)."""
        if self.server is not None:
            return f"llama.cpp:{self.server.gguf.name}"
        return f"server:{self.base_url}:{self.model}"

    def describe(self) -> str:
        """One line for logs and notebook output."""
        if self.server is not None:
            return (f"llama.cpp server ({self.server.gguf.name}, {self.server.slots} slots, "
                    f"{self.server.threads} threads, {self.base_url})")
        return f"OpenAI-compatible server {self.base_url} (model {self.model})"

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.close()

    # ------------------------------------------------------------------ requests
    def _body(self, *, temperature: float, top_p: float, top_k: int | None,
              repetition_penalty: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"temperature": temperature}
        extra: dict[str, Any] = {}
        if temperature > 0:
            kwargs["top_p"] = top_p
        if self.flavour == "llama.cpp":
            # llama.cpp's defaults (top_k 40, min_p 0.05, top_p 0.95) would cut the distribution the
            # transformers backend samples from in full; say exactly what we want.
            extra.update(top_k=top_k or 0, min_p=0.0, repeat_penalty=repetition_penalty or 1.0,
                         cache_prompt=True)
            if temperature <= 0:
                extra["top_k"] = 1
        else:
            if top_k:
                extra["top_k"] = top_k
            if repetition_penalty:
                extra["repetition_penalty"] = repetition_penalty
        extra.update(self.extra)
        return kwargs, extra

    def _one(self, req: _Request, *, max_new_tokens: int, kwargs: dict[str, Any], extra: dict[str, Any],
             count_tokens: Callable[[str], int], prefix: str,
             stop_when: Callable[[str], bool] | None) -> tuple[Generation, bool]:
        """One request; returns its Generation and whether it failed."""
        seed_kw = {"seed": req.seed} if req.seed is not None else {}
        try:
            if stop_when is None:
                r = self.client.completions.create(model=self.model, prompt=req.prompt, max_tokens=max_new_tokens,
                                                   stream=False, extra_body=extra, **seed_kw, **kwargs)
                choice = r.choices[0]
                new = r.usage.completion_tokens if r.usage else count_tokens(choice.text)
                used = r.usage.prompt_tokens if r.usage else req.prompt_tokens  # the server's own count
                reason = "length" if choice.finish_reason == "length" else "stop"
                return Generation((prefix + choice.text).strip(), used, new, reason), False
            # stop_when needs the reply as it grows: stream it and hang up once the test is true
            # (llama.cpp and vLLM stop decoding a request whose client went away).
            text, reason = "", "length"
            stream = self.client.completions.create(model=self.model, prompt=req.prompt, max_tokens=max_new_tokens,
                                                    stream=True, extra_body=extra, **seed_kw, **kwargs)
            try:
                for chunk in stream:
                    if not chunk.choices:
                        continue
                    c = chunk.choices[0]
                    text += c.text or ""
                    if stop_when(prefix + text):
                        reason = "stop"
                        break
                    if c.finish_reason is not None:
                        reason = "length" if c.finish_reason == "length" else "stop"
            finally:
                stream.close()
            return Generation((prefix + text).strip(), req.prompt_tokens, count_tokens(text), reason), False
        except Exception as err:  # noqa: BLE001 - counted and reported, never silent
            self.last_error = f"{type(err).__name__}: {err}"
            return Generation("", req.prompt_tokens, 0, "error"), True

    def complete(self, prompts: Sequence[str], *, prompt_tokens: Sequence[int], max_new_tokens: int,
                 temperature: float, top_p: float = 1.0, top_k: int | None = None,
                 repetition_penalty: float | None = None, seed: int | None = None,
                 count_tokens: Callable[[str], int], prefix: str = "",
                 stop_when: Callable[[str], bool] | None = None, progress: bool = True,
                 desc: str = "server") -> tuple[list[Generation], GenerationStats]:
        """Generate one reply per rendered prompt, ``concurrency`` requests at a time, in input order.

        Longest prompts are sent first so the slow ones do not trail at the end.
        """
        from tqdm.auto import tqdm

        n = len(prompts)
        kwargs, extra = self._body(temperature=temperature, top_p=top_p, top_k=top_k,
                                   repetition_penalty=repetition_penalty)
        reqs = [_Request(i, prompts[i], prompt_tokens[i], None if seed is None else seed + i) for i in range(n)]
        reqs.sort(key=lambda r: -r.prompt_tokens)
        results: list[Generation | None] = [None] * n
        stats = GenerationStats(n=n, batch_size=self.concurrency)
        t0 = time.perf_counter()
        bar = tqdm(total=n, desc=desc, disable=not progress or n == 0, leave=False)
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(n, 1))) as pool:
            futures = {pool.submit(self._one, r, max_new_tokens=max_new_tokens, kwargs=kwargs, extra=extra,
                                   count_tokens=count_tokens, prefix=prefix, stop_when=stop_when): r for r in reqs}
            for fut in as_completed(futures):
                gen, failed = fut.result()
                r = futures[fut]
                results[r.index] = gen  # collected in this thread only: no lock needed
                stats.new_tokens += gen.new_tokens
                stats.prompt_tokens += gen.prompt_tokens
                stats.truncated += gen.finish_reason == "length"
                stats.failed += failed
                bar.update(1)
        bar.close()
        stats.seconds = time.perf_counter() - t0
        return [g for g in results if g is not None], stats

    def next_token_logprobs(self, prompts: Sequence[str], token_ids: Sequence[int], token_texts: Sequence[str], *,
                            top: int = 20, progress: bool = False,
                            desc: str = "next-token log-probs (server)") -> tuple[Any, int]:
        """Log-probabilities of ``token_ids`` as the next token after each rendered prompt, from the server.

        One request per prompt (``max_tokens=1``, greedy, the server's ``top`` most likely tokens);
        llama.cpp keeps each slot's last prompt in its cache, so prompts that share a long prefix (a
        few-shot rubric) only pay for what differs. A token outside the server's top ``top`` gets
        ``-inf`` (probability 0, below every listed one); the second value returned counts the prompts
        whose request failed after the client's retries (their rows are all ``nan``)."""
        import numpy as np
        from tqdm.auto import tqdm

        out = np.full((len(prompts), len(token_ids)), -np.inf, dtype=np.float32)
        extra = {"cache_prompt": True} if self.flavour == "llama.cpp" else {}
        failed = 0

        def one(i: int) -> tuple[int, dict[Any, float] | None]:
            try:
                r = self.client.completions.create(model=self.model, prompt=prompts[i], max_tokens=1, temperature=0.0,
                                                   logprobs=top, stream=False, extra_body=extra)
                return i, _top_logprobs(r.choices[0])
            except Exception as err:  # noqa: BLE001 - counted and reported, never silent
                self.last_error = f"{type(err).__name__}: {err}"
                return i, None

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(len(prompts), 1))) as pool:
            futs = [pool.submit(one, i) for i in range(len(prompts))]
            for fut in tqdm(as_completed(futs), total=len(futs), disable=not progress, leave=False, desc=desc):
                i, top_lp = fut.result()
                if top_lp is None:
                    out[i] = np.nan
                    failed += 1
                    continue
                for j, (tid, text) in enumerate(zip(token_ids, token_texts)):
                    if tid in top_lp:
                        out[i, j] = top_lp[tid]
                    elif text in top_lp:
                        out[i, j] = top_lp[text]
        return out, failed


def _top_logprobs(choice: Any) -> dict[Any, float]:
    """``{token id or token text: logprob}`` of the first generated position of one completion choice.

    llama.cpp answers in the chat-style shape (``logprobs.content[0].top_logprobs`` with ids); vLLM and
    the OpenAI legacy API in the ``logprobs.top_logprobs[0]`` shape (``{text: logprob}``)."""
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        return {}
    extra = getattr(lp, "model_extra", None) or {}
    content = extra.get("content") or (lp.get("content") if isinstance(lp, dict) else None)
    if content:
        return {t.get("id", t.get("token")): float(t["logprob"]) for t in content[0].get("top_logprobs", [])}
    top = getattr(lp, "top_logprobs", None) or (lp.get("top_logprobs") if isinstance(lp, dict) else None)
    return {k: float(v) for k, v in (top[0] or {}).items()} if top else {}
