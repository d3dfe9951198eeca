"""The one scripted stand-in for a language model in unit tests.

:class:`ScriptedLM` answers :meth:`chat` like :class:`helpers.lm.generation.LM` does: one real
:class:`~helpers.lm.generation.Generation` per conversation, in input order, with token counts,
``finish_reason`` (``"length"`` when the reply is longer than ``max_new_tokens`` words),
``prefix`` and ``system`` handled the same way, and :attr:`last_stats`. A test gives it a script
(a function of the conversation, a list of replies, or one fixed reply) and reads back what it was
asked in :attr:`calls`. Because it builds the real result objects, tests break when
``Generation`` changes, as they should.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from helpers.lm.generation import Generation, GenerationStats, as_messages



class ScriptedLM:
    """A fake ``LM`` whose replies come from a script.

    Args:
        script: ``f(messages) -> reply`` (messages as ``[{"role", "content"}, ...]``), a list of
            replies used in order (one per conversation, across calls), or one reply for every
            conversation. A reply is a text or ``(text, finish_reason)``.
        name: what ``lm.name`` says.
        chat_template: what :meth:`render` wraps the conversation in (``{}`` is the turns), so a
            test can change the text the "model" sees without changing the conversation.
    """

    def __init__(self, script: Callable[[list[dict]], Any] | Sequence[Any] | str, *, name: str = "scripted",
                 chat_template: str = "<|user|>{}<|assistant|>"):
        self.name = name
        self.chat_template = chat_template
        self.script = script
        self._queue = None if callable(script) or isinstance(script, str) else list(script)
        self.calls: list[dict[str, Any]] = []  # per chat() call: the messages and the keyword arguments
        self.last_stats = GenerationStats()
        self.default_batch_size = 8

    @property
    def n_replies(self) -> int:
        """Conversations answered so far, over all calls."""
        return sum(len(c["messages"]) for c in self.calls)

    def _reply(self, messages: list[dict]) -> tuple[str, str | None]:
        if callable(self.script):
            out = self.script(messages)
        elif isinstance(self.script, str):
            out = self.script
        else:
            if not self._queue:
                raise AssertionError("ScriptedLM ran out of scripted replies")
            out = self._queue.pop(0)
        return (out[0], out[1]) if isinstance(out, tuple) else (out, None)

    def chat(self, conversations: Iterable[Any], *, max_new_tokens: int = 128, system: str | None = None,
             prefix: str = "", stop_when: Callable[[str], bool] | None = None, batch_size: int | None = None,
             progress: bool = True, **kwargs: Any) -> list[Generation]:
        messages = [as_messages(c, system) for c in conversations]
        self.calls.append({"messages": messages, "max_new_tokens": max_new_tokens, "prefix": prefix, **kwargs})
        stats = GenerationStats(n=len(messages), batch_size=batch_size or self.default_batch_size)
        out = []
        for msgs in messages:
            text, reason = self._reply(msgs)
            words = (prefix + text).split(" ")
            if reason is None:
                reason = "length" if len(words) > max_new_tokens else "stop"
            if reason == "length" and len(words) > max_new_tokens:
                words = words[:max_new_tokens]
            full = " ".join(words)
            if stop_when is not None and reason != "length":
                for k in range(1, len(words) + 1):  # the shortest prefix the test accepts, as LM.chat stops there
                    if stop_when(" ".join(words[:k])):
                        full, reason = " ".join(words[:k]), "stop"
                        break
            prompt_tokens = sum(len(m["content"].split()) for m in msgs)
            new_tokens = len(full.split())
            out.append(Generation(text=full.strip(), prompt_tokens=prompt_tokens, new_tokens=new_tokens,
                                  finish_reason=reason))
            stats.prompt_tokens += prompt_tokens
            stats.new_tokens += new_tokens
            stats.truncated += reason == "length"
        stats.seconds = 1e-3 * max(1, len(messages))
        self.last_stats = stats
        return out

    def count_tokens(self, text: str) -> int:
        """Tokens of a text: here, its words."""
        return len(text.split())

    def render(self, conversation: Any, system: str | None = None) -> str:
        """The text the model would see, like :meth:`LM.render`."""
        turns = "\n".join(f"{m['role']}: {m['content']}" for m in as_messages(conversation, system))
        return self.chat_template.format(turns)

    def last_user_texts(self) -> list[str]:
        """The last user turn of every conversation answered so far, in order."""
        return [msgs[-1]["content"] for c in self.calls for msgs in c["messages"]]

    def ask(self, prompt: str, **kwargs: Any) -> str:
        kwargs.setdefault("progress", False)
        return self.chat([prompt], **kwargs)[0].text

    def chat_json(self, conversations: Iterable[Any], **kwargs: Any):
        """The real :meth:`LM.chat_json` (parsing and failure counting) over the scripted replies."""
        from helpers.lm.generation import LM

        return LM.chat_json(self, conversations, **kwargs)
