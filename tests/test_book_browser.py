"""The rendered book works in a real browser: a tiny book is built from three small executed notebooks made
here (a matplotlib plot and a table, an ``IPython.display.Audio`` player, a collapsed exercise solution), then
headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by selenium) loads the index and the
chapters. Skipped only when no browser is installed (``make apt`` installs it as root)."""
import base64
import io
import os
import shutil
import time

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.build_book import render_book

SOLUTION = "# Solution to exercise 1: the squares, summed.\nanswer = sum(i * i for i in range(10))\nanswer"


def _browser_paths():
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    return browser, shutil.which("chromedriver")


def _display(obj, count=None):
    """The output a Jupyter kernel stores for ``obj``: IPython's own formatters, as in a kernel."""
    from IPython.core.formatters import DisplayFormatter

    data, meta = DisplayFormatter().format(obj)
    if count is None:
        return new_output("display_data", data=data, metadata=meta)
    return new_output("execute_result", data=data, metadata=meta, execution_count=count)


def _plot_output():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2, 3], [1, 4, 9, 16], marker="o")
    ax.set_title("squares")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # what the inline backend stores
    plt.close(fig)
    return new_output("display_data", data={"image/png": base64.b64encode(buf.getvalue()).decode(),
                                            "text/plain": "<Figure size 400x300 with 1 Axes>"}, metadata={})


def _notebooks(folder):
    import pandas as pd
    from IPython.display import Audio

    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    specs = {
        "00_plots.ipynb": ("# 00 · Plots and tables", [
            new_code_cell("plt.plot(...)", execution_count=1, outputs=[_plot_output()]),
            new_code_cell("df", execution_count=2,
                          outputs=[_display(pd.DataFrame({"kind": ["a", "b"], "rate": [0.5, 0.25]}), 2)]),
        ]),
        "01_audio.ipynb": ("# 01 · Audio players", [
            new_code_cell("Audio(tone, rate=16000)", execution_count=1,
                          outputs=[_display(Audio(tone, rate=16000), 1)]),
        ]),
        "02_solutions.ipynb": ("# 02 · Exercises with solutions", [
            new_markdown_cell("## Exercises\n\n1. Sum the squares below ten."),
            new_code_cell(SOLUTION, execution_count=1,
                          metadata={"tags": ["hide-input"], "jupyter": {"source_hidden": True}},
                          outputs=[new_output("execute_result", data={"text/plain": "285"}, execution_count=1)]),
        ]),
        "03_maths.ipynb": ("# 03 · Maths", [
            new_markdown_cell("Inline $p = \\frac{c}{n}$ and a display:\n\n$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$"),
        ]),
    }
    paths = []
    for name, (title, cells) in specs.items():
        nb = new_notebook(cells=[new_markdown_cell(title + "\n\nA chapter of the test book."), *cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / name)
        paths.append(folder / name)
    return paths


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    (tmp / "executed").mkdir()
    nbs = _notebooks(tmp / "executed")
    index = render_book(nbs, tmp / "site", work=tmp / "src", intro="A test book.")
    return index.parent, [p.stem for p in nbs]


@pytest.fixture(scope="module")
def driver():
    browser, chromedriver = _browser_paths()
    if not (browser and chromedriver):
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (make apt, as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000"):
        opts.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    d = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


def _wait(fn, timeout=15.0):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.2)


def test_index_lists_every_chapter_in_order(driver, book):
    site, stems = book
    driver.get((site / "index.html").as_uri())
    assert "Synthetic Data Workshop" in driver.title
    nav = driver.execute_script(
        "return [...document.querySelectorAll('nav.bd-docs-nav a.reference.internal')]"
        ".map(a => a.getAttribute('href'))")
    chapters = [h.split("#")[0].removesuffix(".html") for h in nav if h.split("#")[0] != "#"]
    assert [c for c in chapters if c in stems] == stems, nav
    # the course map links every chapter too
    links = driver.execute_script("return [...document.querySelectorAll('article table a')].map(a => a.textContent)")
    assert links == ["Plots and tables", "Audio players", "Exercises with solutions", "Maths"]


def test_plot_and_table_render(driver, book):
    site, _ = book
    driver.get((site / "00_plots.html").as_uri())
    widths = _wait(lambda: driver.execute_script(
        "return [...document.querySelectorAll('article .cell_output img')].filter(i => i.complete)"
        ".map(i => i.naturalWidth)"))
    assert widths and min(widths) > 0, widths
    assert driver.execute_script("return document.querySelectorAll('article .cell_output table').length") == 1
    # the chapter page has the chapter navigation as well
    nav = driver.execute_script("return [...document.querySelectorAll('nav.bd-docs-nav a')].map(a => a.textContent)")
    assert any("Audio players" in t for t in nav) and any("Exercises with solutions" in t for t in nav)


def test_audio_player_renders(driver, book):
    site, _ = book
    driver.get((site / "01_audio.html").as_uri())
    audios = driver.find_elements("css selector", "article audio")
    assert len(audios) == 1 and audios[0].get_attribute("controls") is not None
    # the browser decodes the embedded WAV: half a second at 16 kHz
    duration = _wait(lambda: driver.execute_script(
        "const a = document.querySelector('article audio'); return a.readyState >= 1 ? a.duration : 0"))
    assert duration == pytest.approx(0.5, abs=0.01)


def test_solution_is_collapsed_until_toggled(driver, book):
    site, _ = book
    driver.get((site / "02_solutions.html").as_uri())
    code = driver.find_element("xpath", "//article//pre[contains(., 'Solution to exercise 1')]")
    assert not code.is_displayed()
    summary = driver.find_element("css selector", "article details.hide summary")
    assert "Show the solution" in summary.text
    # its output is shown without opening it
    assert driver.find_element("xpath", "//article//pre[normalize-space(.)='285']").is_displayed()
    summary.click()
    assert _wait(code.is_displayed, 5)


def test_full_text_search(driver, book):
    site, _ = book
    assert (site / "search.html").exists() and (site / "searchindex.js").exists()
    driver.get((site / "search.html").as_uri() + "?q=squares")
    hits = _wait(lambda: driver.execute_script(
        "return [...document.querySelectorAll('#search-results ul.search li a')].map(a => a.getAttribute('href'))"))
    assert hits and any("02_solutions" in h or "00_plots" in h for h in hits), hits


def test_maths_renders_offline(driver, book):
    """The formulas are typeset by the MathJax copied into the site (this machine has no CDN to fetch one from)."""
    from tools.build_book import local_mathjax

    if local_mathjax() is None:
        pytest.skip("Debian's libjs-mathjax is not installed (make apt, as root): the book falls back to a CDN")
    site, _ = book
    assert (site / "_static" / "mathjax" / "MathJax.js").exists()
    driver.get((site / "03_maths.html").as_uri())
    assert "_static/mathjax/MathJax.js" in driver.page_source
    typeset = _wait(lambda: driver.execute_script("return document.querySelectorAll('.MathJax_CHTML').length"))
    assert typeset == 2, typeset  # the inline formula and the display
    # MathJax 2 keeps each source in a <script type="math/tex">; no visible element may still show it
    raw = driver.find_elements("xpath", "//article//*[not(self::script)][contains(text(), '\\frac')]")
    assert not [e for e in raw if e.is_displayed()], "raw TeX left on the page"
