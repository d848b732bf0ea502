"""The HTML report opened in a real headless browser (Debian's chromium)."""

import shutil
import subprocess

import numpy as np
import pytest

from skinfluence.cli import main

pd = pytest.importorskip("pandas")

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (.ci/run installs it with apt-get; it "
    "could not be installed here)",
)


def chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    proc = subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    """find-label-issues on a digits table with --image-shape 8x8."""
    from sklearn.datasets import load_digits

    from skinfluence.datasets import make_noisy_labels

    folder = tmp_path_factory.mktemp("browser")
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    y_noisy, _ = make_noisy_labels(X, y, rate=0.1, random_state=0)
    frame = pd.DataFrame(X, columns=[f"p{i}" for i in range(64)])
    frame["digit"] = y_noisy
    data = folder / "digits.csv"
    frame.to_csv(data, index=False)
    html = folder / "report.html"
    report = folder / "issues.csv"
    rc = main(
        [
            "find-label-issues",
            str(data),
            "--target",
            "digit",
            "--image-shape",
            "8x8",
            "--repeats",
            "1",
            "--html",
            str(html),
            "--report",
            str(report),
            "--quiet",
        ]
    )
    assert rc == 0
    n_flagged = int(pd.read_csv(report).flagged.sum())
    return folder, html, n_flagged


def test_report_is_self_contained(digits_report):
    _, html, _ = digits_report
    page = html.read_text()
    for needle in ("http://", "https://", 'src="/', "<link"):
        assert needle not in page
    assert page.count('src="data:image/png;base64,') > 2


def test_dom_has_the_flagged_table_and_images(digits_report, tmp_path):
    _, html, n_flagged = digits_report
    dom = chromium(tmp_path, "--dump-dom", html.as_uri())
    assert '<table class="sortable" id="flagged" data-sortable="ready">' in dom
    flagged_table = dom[dom.index('id="flagged"') :]
    body = flagged_table[: flagged_table.index("</table>")]
    assert body.count("<tr>") == n_flagged + 1
    # One image per flagged row in the table, plus the gallery and the figure.
    assert body.count('class="row-image"') == n_flagged
    assert dom.count('class="row-image"') >= n_flagged + min(n_flagged, 60)
    assert 'alt="noise scores, the top flagged rows"' in dom


def test_screenshot_is_not_blank(digits_report, tmp_path):
    from matplotlib.image import imread

    folder, html, _ = digits_report
    shot = folder / "screenshot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1800", html.as_uri())
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1200)
    ink = (pixels.mean(axis=2) < 0.9).mean()
    assert ink > 0.02, ink
    assert pixels.std() > 0.05
    # Not one flat colour either: text, tables and figures give many levels.
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


def test_clicking_a_header_sorts_the_table(digits_report, tmp_path):
    """The page's own sorting script, run by the browser: a click on the
    "row" header orders the flagged rows by row number, a second click
    reverses them."""
    _, html, n_flagged = digits_report
    page = html.read_text()
    clicks = (
        "<script>var th = document.querySelectorAll('#flagged th')[1];"
        "th.click(); var up = Array.prototype.map.call("
        "document.querySelectorAll('#flagged tbody tr'),"
        " function (r) { return r.cells[1].textContent; }).join(',');"
        "th.click(); var down = Array.prototype.map.call("
        "document.querySelectorAll('#flagged tbody tr'),"
        " function (r) { return r.cells[1].textContent; }).join(',');"
        "document.body.setAttribute('data-up', up);"
        "document.body.setAttribute('data-down', down);</script>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", clicks + "</body>"))
    dom = chromium(tmp_path, "--dump-dom", clicked.as_uri())
    up = [int(v) for v in dom.split('data-up="')[1].split('"')[0].split(",")]
    down = [int(v) for v in dom.split('data-down="')[1].split('"')[0].split(",")]
    assert len(up) == n_flagged
    assert up == sorted(up) and down == sorted(up, reverse=True)
    ranks = pd.read_csv(html.parent / "issues.csv")
    assert sorted(up) == sorted(ranks.row[ranks.flagged])
