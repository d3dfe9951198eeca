"""The hand-written tiny transformer: tokenizer, size, learning, exact resume, batched generation, perplexity."""
from __future__ import annotations

import math

import pytest
import torch

from helpers.train.tiny import (CharTokenizer, TinyConfig, TinyLM, generate, latest_checkpoint, load_checkpoint,
                                perplexity, train_tiny)

SUMS = [f"{a}+{b}={a + b}" for a in range(10) for b in range(10)]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer.from_corpus(SUMS)


def small(tok: CharTokenizer, seed: int = 0) -> TinyLM:
    return TinyLM(TinyConfig(vocab_size=tok.vocab_size, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=16),
                  seed=seed)


def accuracy(model: TinyLM, tok: CharTokenizer) -> float:
    prompts = [s.split("=")[0] + "=" for s in SUMS]
    outs = generate(model, tok, prompts, max_new_tokens=3, temperature=0)
    return sum(o == s.split("=")[1] for o, s in zip(outs, SUMS)) / len(SUMS)


@pytest.fixture(scope="module")
def trained(tok):
    model = small(tok)
    report = train_tiny(model, SUMS, tokenizer=tok, steps=300, lr=3e-3, batch_size=64, seq_len=8, log_every=25,
                        eval_fn=lambda m, step: {"accuracy": accuracy(m, tok)}, eval_every=100, progress=False)
    return model, report


def test_tokenizer_round_trip_specials_and_unknown_characters():
    tok = CharTokenizer.from_corpus(["hello world", "abc"])
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert tok.vocab_size == 4 + len(set("hello worldabc"))
    ids = tok.encode("hello", bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == 7
    assert tok.decode(ids) == "hello"
    assert tok.decode(ids, skip_special=False) == "<bos>hello<eos>"
    unknown = tok.encode("hez!")
    assert unknown[2:] == [tok.unk_id, tok.unk_id]
    assert tok.decode(unknown) == "he" + tok.unk_char * 2
    assert CharTokenizer.from_dict(tok.to_dict()).encode("world") == tok.encode("world")
    assert CharTokenizer.from_corpus(["aab"], min_count=2).chars == ["a"]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])


def test_default_config_has_1_to_5_million_parameters():
    model = TinyLM(TinyConfig(vocab_size=100))
    assert 1_000_000 <= model.num_parameters() <= 5_000_000
    # same seed, same weights; another seed, other weights
    a, b, c = (TinyLM(TinyConfig(vocab_size=20, d_model=32, n_layers=1, n_heads=2, d_ff=64), seed=s)
               for s in (1, 1, 2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.tok_emb.weight, c.tok_emb.weight)


def test_learns_single_digit_addition(trained, tok):
    model, report = trained
    losses = report.losses
    assert report.steps == report.global_step == 300
    assert losses[-1] < 0.6 * losses[0], losses
    # the prompt digits are random, so the loss cannot go to zero; the answers can be learnt
    acc = report.log_history[-1]["accuracy"]
    assert acc == accuracy(model, tok) and acc > 0.5, f"greedy accuracy {acc} (chance is about 0.05)"
    assert report.tokens > 0 and report.tokens_per_second > 0 and report.peak_memory_mb > 0
    assert report.eval_metrics["accuracy"] == acc
    assert "300 steps" in report.summary() and report.memory_kind in ("rss", "cuda")


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tok, tmp_path):
    kw = dict(tokenizer=tok, steps=40, lr=3e-3, batch_size=16, seq_len=8, log_every=5, checkpoint_every=10,
              progress=False)
    whole = small(tok)
    full = train_tiny(whole, SUMS, checkpoint_dir=tmp_path / "whole", **kw)

    parts = small(tok)
    first = train_tiny(parts, SUMS, checkpoint_dir=tmp_path / "parts", stop_after=25, **kw)  # "killed" at 25
    assert first.steps == 25 and latest_checkpoint(tmp_path / "parts").name == "ckpt-0000020.pt"
    again = small(tok)  # a fresh process: new model, weights come from the checkpoint
    second = train_tiny(again, SUMS, checkpoint_dir=tmp_path / "parts", **kw)
    assert second.resumed_from.endswith("ckpt-0000020.pt") and second.steps == 20 and second.global_step == 40
    for (name, x), y in zip(whole.state_dict().items(), again.state_dict().values()):
        assert torch.equal(x, y), f"{name} differs after resuming"
    assert second.losses == full.losses
    assert len(list((tmp_path / "parts").glob("ckpt-*.pt"))) == 2  # keep_checkpoints

    model, tok2, ckpt = load_checkpoint(latest_checkpoint(tmp_path / "whole"))
    assert ckpt["step"] == 40 and tok2.chars == tok.chars
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), whole.state_dict().values()))

    with pytest.raises(ValueError, match="other settings.*lr"):
        train_tiny(small(tok), SUMS, checkpoint_dir=tmp_path / "parts", **{**kw, "lr": 1e-3})


def test_a_half_written_checkpoint_is_ignored(tok, tmp_path):
    (tmp_path / "ckpt-0000100.pt.tmp-123").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) is None
    report = train_tiny(small(tok), SUMS, tokenizer=tok, steps=3, batch_size=4, seq_len=8, checkpoint_dir=tmp_path,
                        progress=False)
    assert report.resumed_from is None and latest_checkpoint(tmp_path).name == "ckpt-0000003.pt"


def test_batched_greedy_generation_equals_one_prompt_at_a_time(trained, tok):
    model, _ = trained
    prompts = ["3+4=", "9+9=", "1+", "7+2=", ""]
    batched = generate(model, tok, prompts, max_new_tokens=4, temperature=0)
    alone = [generate(model, tok, [p], max_new_tokens=4, temperature=0)[0] for p in prompts]
    assert batched == alone
    assert batched[0] == "7" and batched[1] == "18"
    sampled = generate(model, tok, prompts, max_new_tokens=4, temperature=1.0, seed=3)
    assert sampled == generate(model, tok, prompts, max_new_tokens=4, temperature=1.0, seed=3)
    assert generate(model, tok, []) == []


def test_perplexity_is_exp_of_mean_nll_and_ranks_seen_text_lower(trained, tok):
    model, _ = trained
    seen, garbage = perplexity(model, tok, ["3+4=7", "=+=9+1+"])
    assert seen < garbage
    ids = torch.tensor([tok.encode("3+4=7", bos=True, eos=True)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[:, :-1]), -1)[0]
    nll = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean().item()
    assert seen == pytest.approx(math.exp(nll), rel=1e-5)
    # a padded batch scores each text as it would alone
    assert perplexity(model, tok, ["3+4=7", "9+9=18"]) == pytest.approx(
        perplexity(model, tok, ["3+4=7"]) + perplexity(model, tok, ["9+9=18"]), rel=1e-5)


def test_token_batches_and_counted_tokens(tok):
    batches = [torch.tensor([tok.encode("1+2=3", bos=True, eos=True), tok.encode("4+4=8", bos=True, eos=True)])]
    report = train_tiny(small(tok), batches, steps=4, progress=False)
    assert report.steps == 4 and report.tokens == 4 * 2 * 6  # 6 input tokens per row, no padding


def test_empty_or_unusable_data_raise_clear_errors(tok):
    with pytest.raises(ValueError, match="empty"):
        train_tiny(small(tok), [], tokenizer=tok, steps=2)
    with pytest.raises(ValueError, match="tokenizer"):
        train_tiny(small(tok), SUMS, steps=2)
    with pytest.raises(ValueError, match="max_len"):
        train_tiny(small(tok), SUMS, tokenizer=tok, steps=2, seq_len=64)
