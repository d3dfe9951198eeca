"""Every notebook runs with papermill in smoke mode, offline, from a fresh kernel.

Each run's wall time and peak memory go to ``build/notebook_runs.csv``; a failure shows the
failing cell and its traceback. ``SDW_NB_TIMEOUT`` (seconds, default 1200) bounds one notebook: a hard stop for a hung run, well above
the 3-minute smoke target, which the CSV records and the README reports.
"""
import os
from pathlib import Path

import pytest

from tools.run_notebook import ROOT, append_csv, run_notebook

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT = int(os.environ.get("SDW_NB_TIMEOUT", "1200"))


@pytest.mark.notebook
@pytest.mark.timeout(TIMEOUT + 120)
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(nb: Path) -> None:
    out = ROOT / "build" / "smoke" / nb.name
    res = run_notebook(nb, out, smoke=True, timeout=TIMEOUT, cell_timeout=TIMEOUT)
    append_csv(ROOT / "build" / "notebook_runs.csv", res)
    print(f"{nb.name}: {res.seconds}s, peak {res.peak_rss_mb} MB, network isolated: {res.isolated_network}")
    assert res.ok, f"{nb.name} failed after {res.seconds}s:\n{res.error}"
