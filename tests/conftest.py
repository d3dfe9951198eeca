"""Shared test settings: offline, quiet, and the repo root importable (for ``tools``)."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for k, v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "TOKENIZERS_PARALLELISM": "false", "SDW_NO_WIDGETS": "1"}.items():
    os.environ.setdefault(k, v)
