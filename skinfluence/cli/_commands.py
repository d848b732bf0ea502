"""The subcommands: find-label-issues, explain, select and demo."""

import contextlib
import datetime
import io
import os
import shlex
import sys
import tempfile
import threading
import time

import numpy as np

from ._table import (
    CLIError,
    as_text_columns,
    check_outputs,
    feature_preprocessor,
    find_column,
    read_table,
    require,
    split_target,
    write_table,
)

TOP_PRINTED = 10
IMAGES_IN_REPORT = 60
ROWS_IN_REPORT = 2000  # flagged rows listed in the HTML page, highest scores first


# ------------------------------------------------------------------ helpers
class Console:
    """Notes and progress on stderr, results on stdout. Progress bars show
    only on a terminal and without ``--quiet``."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bars = not quiet and sys.stderr.isatty()

    def note(self, text):
        if not self.quiet:
            print(text, file=sys.stderr)

    def warn(self, text):
        print(f"skinfluence: warning: {text}", file=sys.stderr)

    @contextlib.contextmanager
    def step(self, desc, total=None):
        """A progress bar for one step: counts ``total`` updates, or, for a
        step that reports nothing while it runs, the time spent so far."""
        if not self.bars:
            yield _NoBar()
            return
        from tqdm.auto import tqdm

        fmt = None if total else "{desc}: {elapsed} elapsed"
        bar = tqdm(total=total, desc=desc, file=sys.stderr, bar_format=fmt, leave=True)
        stop = threading.Event()

        def tick():
            while not stop.wait(0.5):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield bar
        finally:
            stop.set()
            ticker.join()
            bar.close()


class _NoBar:
    def update(self, n=1):
        pass


def _model(name):
    """``None`` is the package's default network; "logreg" a logistic
    regression, whose convex fit makes the judgement repeatable."""
    if name == "mlp":
        return None
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


def _show(value):
    """A label as a person reads it: 'cat' or 3, not np.str_('cat')."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _command_line(args):
    return "skinfluence " + " ".join(shlex.quote(str(a)) for a in args.argv)


def _prepare(args, console):
    """Read the table, check the target and build the model input."""
    with console.step(f"reading {os.path.basename(args.data)}"):
        frame = read_table(args.data)
    target = find_column(frame, args.target, "--target")
    rows, labels, features = split_target(frame, target, args.drop_missing_target)
    if len(rows) < len(frame):
        console.warn(
            f"left out {len(frame) - len(rows)} row(s) whose target {target!r} is "
            "missing (--drop-missing-target)"
        )
    features = features.iloc[rows]
    with console.step("preparing the features"):
        pre, numeric, categorical = feature_preprocessor(features, console.warn)
        X = pre.fit_transform(as_text_columns(features, categorical))
    X = np.ascontiguousarray(X, dtype=np.float64)
    return frame, target, rows, labels, features, X, numeric + categorical


def _label_summary(labels, flagged):
    classes, counts = np.unique(labels, return_counts=True)
    return [
        (c, int(n), int(flagged[labels == c].sum())) for c, n in zip(classes, counts)
    ]


def _print_table(header, rows):
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
        for i, h in enumerate(header)
    ]
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(r, widths)))


def _figure(ncols=1, width=6.0, height=4.2):
    """A matplotlib figure that needs no display (no pyplot)."""
    require("matplotlib", "plot", "Drawing figures")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _images_ax(ax, images, captions, shape, ncols=6):
    """Rows drawn as small images on one axes, with a caption under each."""
    h, w = shape
    for i, (img, cap) in enumerate(zip(images, captions)):
        r, c = divmod(i, ncols)
        left, top = c * 1.3, -r * 1.7
        ax.imshow(
            np.asarray(img, dtype=np.float64).reshape(h, w),
            cmap="gray_r",
            extent=(left, left + 1, top - 1, top),
        )
        ax.text(left + 0.5, top - 1.05, cap, ha="center", va="top", fontsize=8)
    nrows = max(1, -(-len(images) // ncols))
    ax.set_xlim(-0.1, ncols * 1.3)
    ax.set_ylim(-nrows * 1.7, 0.1)
    ax.set_aspect("equal")
    ax.axis("off")


def _image_check(shape, n_columns):
    if shape is not None and shape[0] * shape[1] != n_columns:
        raise CLIError(
            f"--image-shape {shape[0]}x{shape[1]} has {shape[0] * shape[1]} pixels but "
            f"the table has {n_columns} feature columns",
            code=2,
        )


# ---------------------------------------------------- find-label-issues/demo
def _run_filter(X, labels, args, console):
    from .. import NoisyLabelFilter

    filt = NoisyLabelFilter(
        _model(args.model),
        method=args.method,
        contamination=args.contamination,
        n_repeats=args.repeats,
        random_state=args.seed,
    )
    folds = filt.cv * filt.n_repeats
    start = time.perf_counter()
    with console.step(
        f"judging {len(labels)} rows with {folds} held-out {args.model} fits"
    ):
        filt.fit(X, labels)
    return filt, time.perf_counter() - start


def _issues_frame(filt, rows, labels):
    import pandas as pd

    suggested = filt.labels_[np.argmax(filt.predicted_proba_, axis=1)]
    order = np.argsort(-filt.noise_scores_, kind="stable")
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "row": rows[order],
            "given_label": labels[order],
            "suggested_label": suggested[order],
            "noise_score": filt.noise_scores_[order],
            "flagged": filt.label_issues_[order],
        }
    )


def _issue_figure(filt, truth=None, images=None):
    """The noise-score figure; with the truth, the precision-recall curve;
    with images, the top flagged rows."""
    from ..plotting import plot_noise_scores, plot_precision_recall

    ncols = 1 + (truth is not None) + (images is not None)
    fig, axes = _figure(ncols, width=5.2, height=4.2)
    plot_noise_scores(
        filt.noise_scores_, filt.label_issues_, is_noisy=truth, ax=axes[0]
    )
    axes[0].set_title("noise scores")
    if truth is not None:
        plot_precision_recall(
            truth, filt.noise_scores_, flagged=filt.label_issues_, ax=axes[1]
        )
        axes[1].set_title("finding the flipped labels")
    if images is not None:
        imgs, caps, shape = images
        _images_ax(axes[-1], imgs[:18], caps[:18], shape)
        axes[-1].set_title("top flagged rows: given \u2192 suggested")
    return fig


def _label_issues(
    args,
    console,
    *,
    frame,
    target,
    rows,
    labels,
    features,
    X,
    used_columns,
    source,
    truth=None,
    image_shape=None,
    outputs,
):
    filt, elapsed = _run_filter(X, labels, args, console)
    issues = _issues_frame(filt, rows, labels)
    flagged = filt.label_issues_
    per_class = _label_summary(labels, flagged)
    n_flagged = int(flagged.sum())

    print(
        f"{source}: {len(frame)} rows, {len(used_columns)} feature columns "
        f"({X.shape[1]} model inputs), {len(per_class)} classes; "
        f"model={args.model}, method={args.method}, "
        f"contamination={args.contamination} ({elapsed:.1f}s)"
    )
    _print_table(["class", "rows", "flagged"], per_class)
    print(f"flagged {n_flagged} of {len(labels)} rows ({n_flagged / len(labels):.1%})")
    print(f"top {min(TOP_PRINTED, len(issues))} rows by noise score:")
    top = issues.head(TOP_PRINTED)
    _print_table(
        ["rank", "row", "given", "suggested", "noise score", "flagged"],
        [
            (
                r.rank,
                r.row,
                r.given_label,
                r.suggested_label,
                f"{r.noise_score:.3f}",
                "yes" if r.flagged else "",
            )
            for r in top.itertuples()
        ],
    )
    metrics = []
    if truth is not None:
        from sklearn.metrics import average_precision_score

        hits = int(truth[flagged].sum())
        ap = average_precision_score(truth, filt.noise_scores_)
        precision = hits / max(n_flagged, 1)
        recall = hits / max(int(truth.sum()), 1)
        print(
            f"truly flipped among the {n_flagged} flagged rows: {hits} (precision "
            f"{precision:.2f}); found {hits} of the {int(truth.sum())} flipped labels "
            f"(recall {recall:.2f}); average precision of the ranking {ap:.3f}"
        )
        metrics = [
            ("flagged rows whose label was flipped", f"{hits} of {n_flagged}"),
            ("precision", f"{precision:.3f}"),
            ("recall", f"{recall:.3f}"),
            ("average precision of the noise ranking", f"{ap:.3f}"),
        ]

    written = []
    if outputs.get("report"):
        write_table(issues, outputs["report"])
        written.append(f"{outputs['report']} (every row, ranked)")
    if outputs.get("out"):
        kept = rows[~flagged]
        write_table(frame.iloc[kept], outputs["out"])
        written.append(f"{outputs['out']} ({len(kept)} rows kept)")
    images = None
    if image_shape is not None:
        flagged_order = issues[issues.flagged]
        pixels = features.to_numpy(dtype=np.float64)
        position = {r: i for i, r in enumerate(rows)}
        picked = [position[r] for r in flagged_order.row]
        images = (
            [pixels[i] for i in picked],
            [
                f"{r.row}: {r.given_label} \u2192 {r.suggested_label}"
                for r in flagged_order.itertuples()
            ],
            image_shape,
        )
    fig_png = None
    if outputs.get("plot") or outputs.get("html"):
        try:
            with console.step("drawing the figure"):
                fig_png = _png(_issue_figure(filt, truth, images))
        except CLIError:
            if outputs.get("plot"):
                raise
            console.warn("matplotlib is not installed: the HTML report has no figure")
    if outputs.get("plot"):
        with open(outputs["plot"], "wb") as fh:
            fh.write(fig_png)
        written.append(outputs["plot"])
    if outputs.get("html"):
        import skinfluence

        from ..report import gray_png, label_issues_html

        settings = [
            ("command", _command_line(args)),
            ("data", source),
            ("target column", target),
            ("detector model", args.model),
            ("influence method", args.method),
            ("contamination", args.contamination),
            ("cross-fitting", f"{filt.cv} folds x {filt.n_repeats} repeats"),
            ("seed", args.seed),
            ("skinfluence", skinfluence.__version__),
            ("written", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        ]
        counts = [
            ("rows judged", len(labels)),
            ("rows left out (missing target)", len(frame) - len(labels)),
            ("feature columns used", len(used_columns)),
            ("model inputs after encoding", X.shape[1]),
            ("classes", len(per_class)),
            ("rows flagged", f"{n_flagged} ({n_flagged / len(labels):.1%})"),
            ("time", f"{elapsed:.1f}s"),
        ]
        figure_caption = (
            "noise scores"
            + (", the ranking against the truth" if truth is not None else "")
            + (", the top flagged rows" if image_shape is not None else "")
        )
        flagged_rows = issues[issues.flagged].head(ROWS_IN_REPORT)
        value_cols = [] if image_shape is not None else used_columns[:40]
        columns = ["rank", "row", "given label", "suggested label", "noise score"]
        columns += ["image"] if image_shape is not None else value_cols
        table_rows = []
        gallery = []
        for r in flagged_rows.itertuples():
            cells = [r.rank, r.row, r.given_label, r.suggested_label, r.noise_score]
            if image_shape is not None:
                png = gray_png(
                    frame.loc[frame.index[r.row], used_columns]
                    .to_numpy(dtype=np.float64)
                    .reshape(image_shape)
                )
                cells.append(png)
                if len(gallery) < IMAGES_IN_REPORT:
                    gallery.append(
                        (
                            f"row {r.row}: {r.given_label} \u2192 {r.suggested_label}",
                            png,
                        )
                    )
            else:
                cells += [frame.iloc[r.row][c] for c in value_cols]
            table_rows.append(cells)
        page = label_issues_html(
            title=f"Label issues in {source}",
            settings=settings,
            counts=counts,
            per_class=per_class,
            columns=columns,
            rows=table_rows,
            figures=[] if fig_png is None else [(figure_caption, fig_png)],
            images=gallery or None,
            metrics=metrics,
            notes=[
                "Every row was judged by models that did not train on it "
                "(NoisyLabelFilter). The noise score is one minus the held-out "
                "probability of the given label; a row is flagged when its "
                "given label is not the one the held-out models find most "
                "probable (contamination=auto). Row numbers count the data "
                "rows of the file from 0."
            ]
            + (
                [
                    f"The table lists the {ROWS_IN_REPORT} flagged rows of highest "
                    f"noise score out of {n_flagged}; the ranked CSV report has "
                    "every row."
                ]
                if n_flagged > ROWS_IN_REPORT
                else []
            ),
        )
        with open(outputs["html"], "w", encoding="utf-8") as fh:
            fh.write(page)
        written.append(outputs["html"])
    if written:
        print("wrote " + ", ".join(written))
    return filt


def find_label_issues(args):
    console = Console(args.quiet)
    outputs = {
        "out": args.out,
        "report": args.report,
        "html": args.html,
        "plot": args.plot,
    }
    check_outputs(
        {f"--{k}": v for k, v in outputs.items()}, inputs=[args.data], force=args.force
    )
    if args.plot:
        require("matplotlib", "plot", "--plot")
    frame, target, rows, labels, features, X, used = _prepare(args, console)
    _image_check(args.image_shape, len(used))
    _label_issues(
        args,
        console,
        frame=frame,
        target=target,
        rows=rows,
        labels=labels,
        features=features[used],
        X=X,
        used_columns=used,
        source=os.path.basename(args.data),
        image_shape=args.image_shape,
        outputs=outputs,
    )
    if not any(outputs.values()):
        console.note(
            "nothing written; pass --report, --out, --html or --plot to save the results"
        )
    return 0


def demo(args):
    console = Console(args.quiet)
    pd = require("pandas", "cli", "The demo")
    require("matplotlib", "plot", "The demo")
    from sklearn.datasets import load_digits

    from ..datasets import make_noisy_labels

    digits = load_digits()
    folder = args.out_dir or tempfile.mkdtemp(prefix="skinfluence-demo-")
    os.makedirs(folder, exist_ok=True)
    outputs = {
        "html": os.path.join(folder, "report.html"),
        "plot": os.path.join(folder, "label_issues.png"),
        "report": os.path.join(folder, "label_issues.csv"),
    }
    check_outputs(
        {f"the demo's {k}": v for k, v in outputs.items()}, inputs=[], force=args.force
    )
    y_noisy, truth = make_noisy_labels(
        digits.data, digits.target, rate=args.noise, random_state=args.seed
    )
    columns = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    frame = pd.DataFrame(digits.data, columns=columns)
    frame["digit"] = y_noisy
    print(
        f"digits: {len(frame)} rows of 8x8 images, {int(truth.sum())} labels flipped "
        f"({args.noise:.0%}) at random",
        flush=True,
    )
    args.method, args.contamination, args.repeats = "tracin", "auto", 3
    rows, labels, features = split_target(frame, "digit", False)
    pre, numeric, categorical = feature_preprocessor(features, console.warn)
    X = np.ascontiguousarray(pre.fit_transform(features), dtype=np.float64)
    _label_issues(
        args,
        console,
        frame=frame,
        target="digit",
        rows=rows,
        labels=labels,
        features=features,
        X=X,
        used_columns=numeric + categorical,
        source=f"digits with {args.noise:.0%} flipped labels",
        truth=truth,
        image_shape=(8, 8),
        outputs=outputs,
    )
    print(f"open {outputs['html']} in a browser to see the report")
    return 0


# ------------------------------------------------------------------ explain
def explain(args):
    console = Console(args.quiet)
    check_outputs({"--plot": args.plot}, inputs=[args.data], force=args.force)
    if args.plot:
        require("matplotlib", "plot", "--plot")
    frame, target, rows, labels, features, X, used = _prepare(args, console)
    _image_check(args.image_shape, len(used))
    if not 0 <= args.row < len(frame):
        raise CLIError(
            f"--row {args.row} is out of range: the table has {len(frame)} data rows, "
            f"numbered 0 to {len(frame) - 1}",
            code=2,
        )
    where = np.flatnonzero(rows == args.row)
    if not len(where):
        raise CLIError(
            f"--row {args.row} has a missing target and was left out; pick another row",
            code=2,
        )
    i = int(where[0])
    from .. import InfluenceScorer

    with console.step(f"fitting {args.model} and {args.method} on {len(labels)} rows"):
        scorer = InfluenceScorer(
            _model(args.model), method=args.method, random_state=args.seed
        ).fit(X, labels)
    proba = scorer.predict_proba(X[i : i + 1])[0]
    predicted = scorer.classes_[int(np.argmax(proba))]
    label = labels[i] if args.given_label else predicted
    with console.step("scoring the training rows"):
        infl = scorer.influence(X[i : i + 1], np.array([label]))[0].astype(np.float64)
    # A row always supports itself; the listing is about the other rows.
    infl[i] = np.nan
    show = [c for c in frame.columns if c != target][:12]
    print(
        f"row {args.row}: given label {_show(labels[i])}, the model predicts "
        f"{_show(predicted)} (probability {proba.max():.2f}); explaining the loss of "
        f"label {_show(label)}"
    )
    print(frame.iloc[[args.row]][show].to_string())
    order = np.argsort(np.nan_to_num(infl, nan=0.0), kind="stable")
    sides = (
        (
            "proponents (removing them would raise this loss: they support "
            f"{_show(label)})",
            [j for j in order[::-1] if infl[j] > 0][: args.top],
        ),
        (
            "opponents (removing them would lower this loss: they pull away "
            f"from {_show(label)})",
            [j for j in order if infl[j] < 0][: args.top],
        ),
    )
    import pandas as pd

    for title, picked in sides:
        print(f"\ntop {len(picked)} {title}:")
        if not picked:
            print("  (none)")
            continue
        table = frame.iloc[rows[picked]][show].copy()
        table.insert(0, "label", labels[picked])
        table.insert(0, "influence", [f"{infl[j]:.4g}" for j in picked])
        table.index = pd.Index(rows[picked], name="row")
        print(table.to_string())
    if args.plot:
        from ..plotting import plot_proponents_opponents

        fig, axes = _figure(1, width=7, height=5)
        plot_proponents_opponents(
            infl,
            y_train=labels,
            top=min(args.top, 8) if args.image_shape else args.top,
            X_train=None
            if args.image_shape is None
            else features[used].to_numpy(float),
            image_shape=args.image_shape,
            query=None
            if args.image_shape is None
            else features[used].to_numpy(float)[i],
            query_label=label,
            ax=axes[0],
        )
        with open(args.plot, "wb") as fh:
            fh.write(_png(fig))
        print(f"\nwrote {args.plot}")
    return 0


# ------------------------------------------------------------------- select
def _objective_value(objective, classes, proba, y, groups):
    """The validation objective as the selector measures it: the mean log
    loss, or a signed fairness gap between the groups (second minus first in
    sorted order; the largest pairwise gap for more groups)."""
    from sklearn.metrics import log_loss

    if objective == "loss":
        return log_loss(y, proba, labels=classes)
    positive = 1
    values = []
    for g in np.unique(groups):
        m = groups == g
        if objective == "demographic_parity":
            values.append(proba[m, positive].mean())
        else:
            pos = m & (y == classes[positive])
            values.append(
                -log_loss(y[pos], proba[pos], labels=classes) if pos.any() else np.nan
            )
    values = np.array(values)
    if len(values) == 2:
        return float(values[1] - values[0])
    gaps = values[:, None] - values[None, :]
    return float(np.nanmax(np.abs(gaps)))


def select(args):
    console = Console(args.quiet)
    check_outputs({"--out": args.out}, inputs=[args.data], force=args.force)
    fairness = args.objective != "loss"
    if fairness and args.sensitive is None:
        raise CLIError(
            f"--objective {args.objective} needs --sensitive COL, the column of the "
            "groups",
            code=2,
        )
    frame, target, rows, labels, features, X, used = _prepare(args, console)
    groups = None
    if args.sensitive is not None:
        col = find_column(frame, args.sensitive, "--sensitive")
        values = frame[col].iloc[rows]
        if values.isna().any():
            raise CLIError(
                f"--sensitive column {col!r} has {int(values.isna().sum())} missing "
                "value(s); every row needs a group"
            )
        groups = values.astype(str).to_numpy()
        if len(np.unique(groups)) < 2:
            raise CLIError(
                f"--sensitive column {col!r} has a single group ({groups[0]!r}); a "
                "fairness objective compares at least two"
            )
    classes = np.unique(labels)
    if fairness and len(classes) != 2:
        raise CLIError(
            f"--objective {args.objective} needs a target with two classes; "
            f"{target!r} has {len(classes)}"
        )
    from .. import InfluenceScorer, InfluentialSubsetSelector

    sel = InfluentialSubsetSelector(
        _model(args.model),
        method=args.method,
        objective=args.objective,
        fraction=args.fraction,
        random_state=args.seed,
    )
    with console.step(f"scoring {len(labels)} rows on the validation {args.objective}"):
        sel.fit(X, labels, sensitive_features=groups)
    val = sel.validation_indices_
    train = np.setdiff1d(np.arange(len(labels)), val)
    kept = np.setdiff1d(sel.sample_indices_, val)

    def measured(train_rows):
        model = InfluenceScorer(
            _model(args.model), method=args.method, random_state=args.seed
        ).fit(X[train_rows], labels[train_rows])
        proba = model.predict_proba(X[val])
        g = None if groups is None else groups[val]
        value = _objective_value(args.objective, model.classes_, proba, labels[val], g)
        accuracy = float(np.mean(model.classes_[proba.argmax(axis=1)] == labels[val]))
        return value, accuracy

    with console.step("refitting on all and on the selected rows", total=2) as bar:
        before = measured(train)
        bar.update()
        after = measured(kept)
        bar.update()
    name = {
        "loss": "log loss",
        "demographic_parity": "demographic parity gap",
        "equal_opportunity": "equal opportunity gap",
    }[args.objective]
    print(
        f"{os.path.basename(args.data)}: {len(labels)} rows, {len(val)} held out for "
        f"validation; model={args.model}, method={args.method}, objective="
        f"{args.objective}, fraction={args.fraction}"
    )
    print(
        f"kept {len(sel.sample_indices_)} of {len(labels)} rows (dropped "
        f"{len(labels) - len(sel.sample_indices_)} training rows)"
    )
    _print_table(
        ["", f"validation {name}", "validation accuracy"],
        [
            ("all training rows", f"{before[0]:.4f}", f"{before[1]:.3f}"),
            ("selected rows", f"{after[0]:.4f}", f"{after[1]:.3f}"),
        ],
    )
    if args.out:
        write_table(frame.iloc[rows[sel.sample_indices_]], args.out)
        print(f"wrote {args.out} ({len(sel.sample_indices_)} rows)")
    return 0
