"""The ``skinfluence`` command line: label issues, explanations and subset
selection on the user's own table, and a demo on digits.

Exit status: 0 when the command ran, 1 for a problem with the data (a
missing or unreadable file, a target with one class, ...), 2 for a problem
with the arguments (an unknown column, an output file that exists without
``--force``, ``--row`` out of range). User errors print one line and no
traceback; ``--debug`` shows it. The input file is only read, never written.
"""

import argparse
import sys
import warnings

from ._table import CLIError

__all__ = ["main"]

EPILOG = (
    "Exit status: 0 ok, 1 data error, 2 usage error. Outputs are never "
    "overwritten without --force, and the input file is never modified."
)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {value}")
    return value


def _contamination(text):
    if text in ("auto", "confident_joint"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, confident_joint or a fraction in (0, 0.5], got {text!r}"
        ) from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(
            f"expected a fraction in (0, 0.5], got {value}"
        )
    return value


def _image_shape(text):
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 8x8, got {text!r}"
        ) from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return h, w


def _methods():
    from .. import METHODS

    return sorted(METHODS)


def build_parser():
    """The argument parser of the ``skinfluence`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--quiet", action="store_true", help="no progress bars or notes"
    )
    common.add_argument(
        "--debug", action="store_true", help="show the traceback of an error"
    )
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument(
        "--force", action="store_true", help="overwrite output files that exist"
    )

    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("data", metavar="DATA", help="a CSV or Parquet file")
    table.add_argument(
        "--target", required=True, metavar="COL", help="the column holding the labels"
    )
    table.add_argument(
        "--drop-missing-target",
        action="store_true",
        help="leave out rows whose target is missing (otherwise an error)",
    )

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--model",
        choices=["logreg", "mlp"],
        default="logreg",
        help="the differentiable model that judges the rows: logistic regression "
        "(default) or the package's small neural network",
    )
    model.add_argument(
        "--method",
        choices=_methods(),
        default="tracin",
        help="influence method (default tracin)",
    )

    parser = argparse.ArgumentParser(
        prog="skinfluence",
        description="Training-data influence on your own table: find mislabeled "
        "rows, explain a prediction by the rows behind it, select the rows that "
        "help a validation objective.",
        epilog=EPILOG,
    )
    import skinfluence

    parser.add_argument(
        "--version", action="version", version=f"skinfluence {skinfluence.__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "find-label-issues",
        parents=[table, model, common],
        help="rank the rows by how likely their label is wrong",
        description="Judge every row by models that did not train on it "
        "(NoisyLabelFilter), write a ranked report and the cleaned table.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--contamination",
        type=_contamination,
        default="auto",
        help="how many rows to flag: auto (the held-out models prefer another "
        "label; default), confident_joint, or a fraction in (0, 0.5]",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=3,
        help="repetitions of the 5-fold cross-fitting, averaged (default 3; 1 is "
        "three times faster)",
    )
    p.add_argument(
        "--out", metavar="CLEANED", help="write the table without flagged rows"
    )
    p.add_argument(
        "--report", metavar="CSV", help="write every row ranked by noise score"
    )
    p.add_argument("--html", metavar="HTML", help="write a self-contained HTML report")
    p.add_argument("--plot", metavar="PNG", help="write the noise-score figure")
    p.add_argument(
        "--image-shape",
        type=_image_shape,
        metavar="HxW",
        help="the feature columns are the pixels of an image of this size; the "
        "HTML report then shows the flagged rows as images",
    )
    p.set_defaults(func="find_label_issues")

    p = sub.add_parser(
        "explain",
        parents=[table, model, common],
        help="the training rows that most helped and hurt one row's prediction",
        description="Fit the model on every row and list the rows whose removal "
        "would most raise (proponents) and lower (opponents) the loss of one "
        "row's prediction.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--row",
        type=int,
        required=True,
        metavar="N",
        help="row to explain: its 0-based position among the data rows",
    )
    p.add_argument("--top", type=_positive_int, default=10, help="rows per side")
    p.add_argument(
        "--given-label",
        action="store_true",
        help="explain the loss of the row's given label instead of the prediction",
    )
    p.add_argument(
        "--plot", metavar="PNG", help="write the proponents/opponents figure"
    )
    p.add_argument(
        "--image-shape", type=_image_shape, metavar="HxW", help="draw rows as images"
    )
    p.set_defaults(func="explain")

    p = sub.add_parser(
        "select",
        parents=[table, model, common],
        help="keep the rows that help a validation objective",
        description="InfluentialSubsetSelector on the table: score every row by "
        "its influence on a held-out validation objective and keep the most "
        "helpful ones; prints the objective before and after.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--objective",
        choices=["loss", "demographic_parity", "equal_opportunity"],
        default="loss",
        help="what the selection improves on the validation rows (default loss)",
    )
    p.add_argument(
        "--sensitive",
        metavar="COL",
        help="column of the groups, needed by the fairness objectives",
    )
    p.add_argument(
        "--fraction",
        type=_fraction,
        default=0.9,
        help="share of rows kept at most (default 0.9)",
    )
    p.add_argument("--out", metavar="SELECTED", help="write the selected rows")
    p.set_defaults(func="select")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="find flipped labels in scikit-learn's digits, end to end",
        description="Flip 10%% of the labels of scikit-learn's digits, find them "
        "with the default NoisyLabelFilter, print how many flagged rows were "
        "truly flipped, and write the figure and the HTML report.",
        epilog=EPILOG,
    )
    p.add_argument(
        "--model",
        choices=["logreg", "mlp"],
        default="mlp",
        help="the detector model (default mlp, the NoisyLabelFilter default)",
    )
    p.add_argument(
        "--noise", type=_fraction, default=0.1, help="share of labels flipped (0.1)"
    )
    p.add_argument(
        "--out-dir",
        metavar="DIR",
        help="folder for the report and the figure (default: a new temporary one)",
    )
    p.set_defaults(func="demo")
    return parser


def _print_warning(message, category, filename, lineno, file=None, line=None):
    print(f"skinfluence: warning: {message}", file=sys.stderr)


def main(argv=None):
    """Run the ``skinfluence`` command; returns the exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        # No command at all: the full help, which lists the commands, rather
        # than argparse's one-line complaint; still a usage error.
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from ..exceptions import SkinfluenceDeprecationWarning
    from . import _commands

    command = getattr(_commands, args.func)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        # Other libraries' deprecations (torch's own internals among them)
        # are for their developers, not for the user of a command.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("default", category=SkinfluenceDeprecationWarning)
        warnings.showwarning = _print_warning
        try:
            return command(args)
        except CLIError as exc:
            if args.debug:
                raise
            print(f"skinfluence: error: {exc}", file=sys.stderr)
            return exc.code
        except (ValueError, TypeError, ImportError) as exc:
            if args.debug:
                raise
            print(f"skinfluence: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("skinfluence: interrupted", file=sys.stderr)
            return 130
