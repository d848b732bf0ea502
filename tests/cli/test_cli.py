"""The command line, tried as a user would: their own table, and every kind of
bad input, each with a one-line error, the right exit status and no
traceback."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from _cli_tables import new_user_table

from skinfluence import InfluenceScorer, NoisyLabelFilter
from skinfluence.cli import main

pd = pytest.importorskip("pandas")


@pytest.fixture
def small_csv(tmp_path):
    """A small, quick table (120 rows) for the commands' error paths."""
    frame, _ = new_user_table(n=120, seed=1)
    path = tmp_path / "small.csv"
    frame.to_csv(path, index=False)
    return path


def run(*argv):
    """Exit status of ``skinfluence ARGV`` run in this process."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        return exc.code


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error(capsys, code, rc, *needles):
    """The command failed with ``code``, printed one error line naming every
    needle, and no traceback."""
    err = capsys.readouterr().err
    assert rc == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------- the new user's table
@pytest.fixture(scope="module")
def new_user_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("new_user")
    frame, truth = new_user_table()
    data = folder / "customers.csv"
    frame.to_csv(data, index=False)
    before = digest(data)
    outputs = {
        "report": folder / "issues.csv",
        "out": folder / "cleaned.csv",
        "html": folder / "report.html",
        "plot": folder / "issues.png",
    }
    argv = ["find-label-issues", data, "--target", "tier"]
    for option, path in outputs.items():
        argv += [f"--{option}", path]
    rc = run(*argv)
    return dict(
        rc=rc,
        frame=frame,
        truth=truth,
        data=data,
        before=before,
        **outputs,
    )


def test_new_user_table_finds_the_flipped_rows(new_user_run):
    from sklearn.metrics import average_precision_score

    r = new_user_run
    assert r["rc"] == 0
    report = pd.read_csv(r["report"])
    assert list(report.columns) == [
        "rank",
        "row",
        "given_label",
        "suggested_label",
        "noise_score",
        "flagged",
    ]
    assert sorted(report.row) == list(range(len(r["frame"])))
    assert np.all(np.diff(report.noise_score) <= 0)
    # String labels are kept as given.
    assert set(report.given_label) == {"bronze", "silver", "gold"}
    by_row = report.set_index("row").sort_index()
    assert (by_row.given_label == r["frame"].tier).all()
    ap = average_precision_score(r["truth"], by_row.noise_score)
    assert ap >= 0.8, ap
    top = report.head(len(report) // 10)
    assert r["truth"][top.row].mean() > 0.5


def test_new_user_table_writes_the_cleaned_file_and_pictures(new_user_run):
    r = new_user_run
    report = pd.read_csv(r["report"])
    cleaned = pd.read_csv(r["out"])
    kept = np.sort(report.row[~report.flagged].to_numpy())
    assert len(cleaned) == len(kept) < len(r["frame"])
    expected = r["frame"].iloc[kept].reset_index(drop=True)
    pd.testing.assert_frame_equal(cleaned, expected)
    assert r["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = r["html"].read_text()
    assert '<table class="sortable" id="flagged">' in page
    assert page.count("<tr>") > report.flagged.sum()
    assert "data:image/png;base64," in page
    # The input file is never modified.
    assert digest(r["data"]) == r["before"]


def test_summary_table_is_printed(small_csv, capsys):
    assert run("find-label-issues", small_csv, "--target", "tier", "--repeats", 1) == 0
    out = capsys.readouterr().out
    assert "120 rows" in out and "3 classes" in out
    assert "class" in out and "flagged" in out
    assert "top 10 rows by noise score" in out
    for label in ("bronze", "silver", "gold"):
        assert label in out


def test_report_matches_the_filter_run_directly(tmp_path, small_csv):
    """The command's noise scores are NoisyLabelFilter's on the documented
    preprocessing: median imputation with indicators and scaling for numbers,
    one-hot encoding for text."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    report = tmp_path / "r.csv"
    argv = ["find-label-issues", small_csv, "--target", "tier", "--repeats", 1]
    assert run(*argv, "--report", report) == 0
    frame = pd.read_csv(small_csv)
    numeric = ["age", "score", "income", "noise"]
    pre = ColumnTransformer(
        [
            (
                "n",
                make_pipeline(
                    SimpleImputer(add_indicator=True, strategy="median"),
                    StandardScaler(),
                ),
                numeric,
            ),
            ("c", OneHotEncoder(sparse_output=False), ["region"]),
        ]
    )
    X = pre.fit_transform(frame)
    filt = NoisyLabelFilter(
        LogisticRegression(max_iter=1000), n_repeats=1, random_state=0
    ).fit(X, frame.tier.to_numpy())
    got = pd.read_csv(report).sort_values("row")
    np.testing.assert_allclose(got.noise_score, filt.noise_scores_, atol=1e-6)
    np.testing.assert_array_equal(got.flagged, filt.label_issues_)


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    frame, _ = new_user_table(n=90, seed=2)
    data = tmp_path / "t.parquet"
    frame.to_parquet(data)
    out = tmp_path / "cleaned.parquet"
    assert (
        run(
            "find-label-issues",
            data,
            "--target",
            "tier",
            "--repeats",
            1,
            "--out",
            out,
            "--quiet",
        )
        == 0
    )
    cleaned = pd.read_parquet(out)
    assert list(cleaned.columns) == list(frame.columns)
    assert 0 < len(cleaned) <= len(frame)


# ------------------------------------------------------------------ bad input
def test_missing_file(tmp_path, capsys):
    rc = run("find-label-issues", tmp_path / "nope.csv", "--target", "y")
    one_error(capsys, 1, rc, "nope.csv", "no such file")


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"just one column\nvalue\nvalue\n", "1 column"),
        (b"a,b,tier\n", "no data rows"),
        (b'a,b,tier\n1,2,"x\n3,4', "not a readable CSV"),
    ],
    ids=["empty", "binary", "one-column", "header-only", "broken-quote"],
)
def test_unreadable_empty_or_non_tabular_file(tmp_path, capsys, content, needle):
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    rc = run("find-label-issues", data, "--target", "tier")
    one_error(capsys, 1, rc, needle)
    assert data.read_bytes() == content


def test_unknown_target_lists_columns_and_suggests(small_csv, capsys):
    rc = run("find-label-issues", small_csv, "--target", "teir")
    line = one_error(capsys, 2, rc, "'teir'", "Did you mean 'tier'?", "'region'")
    assert "'income'" in line


def test_target_with_one_class(tmp_path, capsys):
    data = tmp_path / "one.csv"
    pd.DataFrame({"x": range(10), "y": ["a"] * 10}).to_csv(data, index=False)
    rc = run("find-label-issues", data, "--target", "y")
    line = one_error(capsys, 1, rc, "only one class", "('a')")
    assert "np.str_" not in line


def test_numeric_target_with_many_values_is_called_one(tmp_path, capsys):
    # A regression target of whole numbers (counts, prices): a short line
    # that says what it looks like, not hundreds of one-row classes.
    rng = np.random.default_rng(0)
    data = tmp_path / "counts.csv"
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    frame["y"] = rng.integers(0, 1000, size=300).astype(float)
    frame.to_csv(data, index=False)
    rc = run("find-label-issues", data, "--target", "y")
    line = one_error(capsys, 1, rc, "'y'", "distinct values", "class labels")
    assert len(line) < 300, line


def test_target_with_missing_values(tmp_path, capsys):
    frame, _ = new_user_table(n=120, seed=3)
    frame.loc[[4, 9, 30], "tier"] = np.nan
    data = tmp_path / "gaps.csv"
    frame.to_csv(data, index=False)
    rc = run("find-label-issues", data, "--target", "tier")
    one_error(capsys, 1, rc, "3 missing value", "--drop-missing-target")

    report = tmp_path / "r.csv"
    out = tmp_path / "clean.csv"
    rc = run(
        "find-label-issues",
        data,
        "--target",
        "tier",
        "--drop-missing-target",
        "--repeats",
        1,
        "--report",
        report,
        "--out",
        out,
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "left out 3 row(s)" in err
    ranked = pd.read_csv(report)
    assert len(ranked) == 117
    assert not {4, 9, 30} & set(ranked.row)
    assert pd.read_csv(out).tier.notna().all()


def test_feature_column_mostly_missing_warns(tmp_path, capsys):
    frame, _ = new_user_table(n=120, seed=4)
    frame["sparse"] = np.where(np.arange(120) % 3 == 0, 1.0, np.nan)
    data = tmp_path / "sparse.csv"
    frame.to_csv(data, index=False)
    rc = run("find-label-issues", data, "--target", "tier", "--repeats", 1)
    err = capsys.readouterr().err
    assert rc == 0, err
    warning = [
        line for line in err.splitlines() if "warning" in line and "sparse" in line
    ]
    assert len(warning) == 1 and "67% missing" in warning[0]


@pytest.mark.parametrize("option", ["--out", "--report", "--html", "--plot"])
def test_existing_output_needs_force(small_csv, tmp_path, capsys, option):
    target = tmp_path / "exists.txt"
    target.write_text("keep me")
    rc = run("find-label-issues", small_csv, "--target", "tier", option, target)
    one_error(capsys, 2, rc, option, "already exists", "--force")
    assert target.read_text() == "keep me"
    rc = run(
        "find-label-issues",
        small_csv,
        "--target",
        "tier",
        "--repeats",
        1,
        option,
        target,
        "--force",
    )
    assert rc == 0
    assert target.read_bytes() != b"keep me"


def test_output_never_overwrites_the_input(small_csv, capsys):
    before = digest(small_csv)
    rc = run(
        "find-label-issues",
        small_csv,
        "--target",
        "tier",
        "--out",
        small_csv,
        "--force",
    )
    one_error(capsys, 2, rc, "is the input file")
    assert digest(small_csv) == before


def test_parquet_without_pyarrow_names_the_extra(tmp_path, capsys, monkeypatch):
    data = tmp_path / "t.parquet"
    data.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    rc = run("find-label-issues", data, "--target", "tier")
    one_error(capsys, 1, rc, "pyarrow", 'pip install "skinfluence[parquet]"')


def test_without_pandas_names_the_extra(small_csv, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    rc = run("find-label-issues", small_csv, "--target", "tier")
    one_error(capsys, 1, rc, "pandas", 'pip install "skinfluence[cli]"')


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--contamination", "0.9"], "--contamination"),
        (["--contamination", "lots"], "--contamination"),
        (["--model", "forest"], "--model"),
        (["--method", "magic"], "--method"),
        (["--repeats", "0"], "--repeats"),
        (["--image-shape", "eight"], "--image-shape"),
    ],
)
def test_bad_option_values_are_usage_errors(small_csv, capsys, argv, needle):
    rc = run("find-label-issues", small_csv, "--target", "tier", *argv)
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err


def test_no_command_prints_the_help_and_is_a_usage_error(capsys):
    rc = main([])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    for command in ("find-label-issues", "explain", "select", "demo"):
        assert command in err
    assert "usage: skinfluence" in err and "Traceback" not in err


def test_image_shape_must_match_the_columns(small_csv, capsys):
    rc = run("find-label-issues", small_csv, "--target", "tier", "--image-shape", "8x8")
    one_error(capsys, 2, rc, "64 pixels", "5 feature columns")


# -------------------------------------------------------------------- explain
def test_explain_lists_the_rows_influence_ranks_first(small_csv, capsys):
    from sklearn.linear_model import LogisticRegression

    from skinfluence.cli._table import as_text_columns, feature_preprocessor

    rc = run("explain", small_csv, "--target", "tier", "--row", 7, "--top", 3)
    out = capsys.readouterr().out
    assert rc == 0
    # Reference: the same model and method, through the library.
    frame = pd.read_csv(small_csv)
    features = frame.drop(columns="tier")
    pre, _, cat = feature_preprocessor(features, print)
    X = pre.fit_transform(as_text_columns(features, cat))
    y = frame.tier.to_numpy()
    scorer = InfluenceScorer(LogisticRegression(max_iter=1000), random_state=0).fit(
        X, y
    )
    infl = scorer.influence(X[7:8])[0]
    infl[7] = np.nan
    order = np.argsort(np.nan_to_num(infl))
    lines = out.splitlines()
    pro = lines.index(next(s for s in lines if s.startswith("top 3 proponents")))
    opp = lines.index(next(s for s in lines if s.startswith("top 3 opponents")))
    proponents = [int(s.split()[0]) for s in lines[pro + 3 : pro + 6]]
    opponents = [int(s.split()[0]) for s in lines[opp + 3 : opp + 6]]
    assert proponents == list(order[::-1][:3])
    assert opponents == list(order[:3])
    assert 7 not in proponents


def test_explain_writes_the_plot(small_csv, tmp_path):
    plot = tmp_path / "why.png"
    rc = run(
        "explain",
        small_csv,
        "--target",
        "tier",
        "--row",
        0,
        "--plot",
        plot,
        "--given-label",
    )
    assert rc == 0 and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("row", [120, -1, 10_000])
def test_explain_row_out_of_range(small_csv, capsys, row):
    rc = run("explain", small_csv, "--target", "tier", "--row", row)
    one_error(capsys, 2, rc, f"--row {row}", "120 data rows", "0 to 119")


# --------------------------------------------------------------------- select
def test_select_prints_the_objective_before_and_after(small_csv, tmp_path, capsys):
    out = tmp_path / "selected.csv"
    rc = run("select", small_csv, "--target", "tier", "--fraction", 0.8, "--out", out)
    text = capsys.readouterr().out
    assert rc == 0
    assert "validation log loss" in text
    before = [s for s in text.splitlines() if s.strip().startswith("all training rows")]
    after = [s for s in text.splitlines() if s.strip().startswith("selected rows")]
    assert len(before) == len(after) == 1
    selected = pd.read_csv(out)
    assert 96 <= len(selected) < 120
    assert set(selected.columns) == set(pd.read_csv(small_csv).columns)


def test_select_fairness_objective(tmp_path, capsys):
    from skinfluence.datasets import make_fairness_problem

    problem = make_fairness_problem(n_samples=300, random_state=0)
    X, y, s = problem[0], problem[1], problem[2]
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    frame["group"] = np.where(s == 1, "b", "a")
    frame["hired"] = np.where(y == 1, "yes", "no")
    data = tmp_path / "fair.csv"
    frame.to_csv(data, index=False)
    rc = run(
        "select",
        data,
        "--target",
        "hired",
        "--objective",
        "demographic_parity",
        "--sensitive",
        "group",
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "demographic parity gap" in text


def test_objective_value_against_hand_computation():
    from skinfluence.cli._commands import _objective_value

    classes = np.array(["no", "yes"])
    proba = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    y = np.array(["no", "yes", "yes", "yes"])
    groups = np.array(["a", "a", "b", "b"])
    dp = _objective_value("demographic_parity", classes, proba, y, groups)
    assert dp == pytest.approx((0.7 + 0.9) / 2 - (0.2 + 0.4) / 2)
    eo = _objective_value("equal_opportunity", classes, proba, y, groups)
    # Value = minus the mean loss on a group's positive rows; gap = b - a.
    value_a = np.log(0.4)
    value_b = (np.log(0.7) + np.log(0.9)) / 2
    assert eo == pytest.approx(value_b - value_a)
    loss = _objective_value("loss", classes, proba, y, groups)
    assert loss == pytest.approx(-np.mean(np.log([0.8, 0.4, 0.7, 0.9])))


def test_select_fairness_needs_sensitive(small_csv, capsys):
    rc = run(
        "select", small_csv, "--target", "tier", "--objective", "demographic_parity"
    )
    one_error(capsys, 2, rc, "--sensitive")


def test_select_sensitive_column_missing(small_csv, capsys):
    rc = run(
        "select",
        small_csv,
        "--target",
        "tier",
        "--objective",
        "demographic_parity",
        "--sensitive",
        "regoin",
    )
    one_error(capsys, 2, rc, "'regoin'", "Did you mean 'region'?")


def test_select_sensitive_column_with_one_group(tmp_path, capsys):
    frame, _ = new_user_table(n=60, seed=5)
    frame["site"] = "paris"
    frame["tier"] = np.where(frame.tier == "gold", "gold", "other")
    data = tmp_path / "one_group.csv"
    frame.to_csv(data, index=False)
    rc = run(
        "select",
        data,
        "--target",
        "tier",
        "--objective",
        "demographic_parity",
        "--sensitive",
        "site",
    )
    one_error(capsys, 1, rc, "single group", "'paris'")


# ---------------------------------------------------------------- demo, shell
@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    rc = run("demo", "--model", "logreg", "--out-dir", tmp_path, "--quiet")
    out = capsys.readouterr().out
    assert rc == 0
    line = next(s for s in out.splitlines() if s.startswith("truly flipped among"))
    hits = int(line.split(":")[1].split()[0])
    assert hits >= 150  # of 180 flipped
    for name in ("report.html", "label_issues.png", "label_issues.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert str(tmp_path / "report.html") in out
    rc = run("demo", "--out-dir", tmp_path)
    one_error(capsys, 2, rc, "already exists", "--force")


def test_progress_bars_only_on_a_terminal(monkeypatch, capsys):
    from skinfluence.cli._commands import Console

    class Terminal:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with Console(quiet=False).step("working", total=2) as bar:
        bar.update()
        bar.update()
    assert "working" in term.text and "2/2" in term.text
    term.text = ""
    with Console(quiet=True).step("working", total=2) as bar:
        bar.update()
    assert term.text == ""
    monkeypatch.setattr(Terminal, "isatty", lambda self: False)
    with Console(quiet=False).step("working") as bar:
        bar.update()
    assert term.text == ""


def test_shell_exit_codes_and_debug(tmp_path):
    """As a shell sees it: ``python -m skinfluence``, exit status, one line on
    stderr, and the traceback only with --debug."""
    missing = str(tmp_path / "missing.csv")
    cmd = [
        sys.executable,
        "-m",
        "skinfluence",
        "find-label-issues",
        missing,
        "--target",
        "y",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"skinfluence: error: {missing}: no such file"
    proc = subprocess.run(cmd + ["--debug"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_import_needs_neither_matplotlib_nor_pandas():
    code = (
        "import sys\n"
        "for name in ('matplotlib', 'pandas', 'pyarrow'):\n"
        "    sys.modules[name] = None\n"
        "import skinfluence, skinfluence.plotting, skinfluence.report, skinfluence.cli\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_unknown_command_is_a_usage_error(capsys):
    assert run("no-such-command") == 2
    assert "usage:" in capsys.readouterr().err


def test_html_lists_at_most_the_cap_of_flagged_rows(small_csv, tmp_path, monkeypatch):
    from skinfluence.cli import _commands

    monkeypatch.setattr(_commands, "ROWS_IN_REPORT", 3)
    html, report = tmp_path / "r.html", tmp_path / "r.csv"
    argv = ["find-label-issues", small_csv, "--target", "tier", "--repeats", 1]
    assert run(*argv, "--html", html, "--report", report) == 0
    page = html.read_text()
    table = page[page.index('id="flagged"') :]
    assert table[: table.index("</table>")].count("<tr>") == 1 + 3
    n_flagged = int(pd.read_csv(report).flagged.sum())
    assert n_flagged > 3
    assert f"the 3 flagged rows of highest noise score out of {n_flagged}" in page


def test_deprecations_of_other_libraries_are_not_shown(small_csv, capsys, monkeypatch):
    # e.g. torch's own "torch.jit.script is deprecated" on its first forward-
    # mode gradient: nothing the user of the command can act on.
    import warnings

    from skinfluence.cli import _commands
    from skinfluence.exceptions import SkinfluenceWarning

    real = _commands.find_label_issues

    def noisy(args):
        warnings.warn("an internal API is deprecated", DeprecationWarning)
        warnings.warn("a result may be off", SkinfluenceWarning)
        return real(args)

    monkeypatch.setattr(_commands, "find_label_issues", noisy)
    rc = run("find-label-issues", small_csv, "--target", "tier", "--repeats", 1)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "a result may be off" in err
    assert "deprecated" not in err


def test_semicolon_table_with_decimal_points(tmp_path, capsys):
    frame, _ = new_user_table(n=120, seed=1)
    data = tmp_path / "semi.csv"
    frame.to_csv(data, index=False, sep=";")  # decimal points, not commas
    rc = run("find-label-issues", data, "--target", "tier", "--repeats", 1)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "identifier" not in err
    comma = tmp_path / "comma.csv"
    frame.to_csv(comma, index=False, sep=";", decimal=",")
    rc = run("find-label-issues", comma, "--target", "tier", "--repeats", 1)
    err2 = capsys.readouterr().err
    assert rc == 0 and "identifier" not in err2, err2
