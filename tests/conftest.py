"""Shared test settings: offline, quiet, and the repo root importable (for ``tools``)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for k, v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false", "SDW_NO_WIDGETS": "1"}.items():
    os.environ.setdefault(k, v)


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a test module (tiny models run faster on one, most of all on a shared 2-core
    machine); the previous count is restored after the module. Use it with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
