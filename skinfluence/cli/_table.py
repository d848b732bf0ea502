"""Reading the user's table, checking it, and turning it into model input."""

import difflib
import os

import numpy as np


class CLIError(Exception):
    """A problem the user can fix: printed as one line, never a traceback.

    ``code`` is the exit status: 1 for a problem found in the data, 2 for a
    problem with the command's arguments.
    """

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


PARQUET = (".parquet", ".pq")
MISSING_WARN = 0.5  # feature columns with a larger missing fraction are named


def require(module, extra, what):
    """Import ``module`` or fail with the pip command that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CLIError(
            f"{what} needs {module}, which is not installed; install it with "
            f'pip install "skinfluence[{extra}]"'
        ) from None


def read_table(path):
    """Read a CSV or Parquet file into a DataFrame, with errors a person can act
    on. Nothing from the file is executed or unpickled."""
    pd = require("pandas", "cli", "Reading tables")
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a folder; pass a CSV or Parquet file")
    if os.path.getsize(path) == 0:
        raise CLIError(f"{path} is empty; pass a CSV or Parquet file with a header row")
    ext = os.path.splitext(path)[1].lower()
    if ext in PARQUET:
        require("pyarrow", "parquet", "Reading Parquet files")
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except Exception as exc:  # pyarrow raises several kinds
            raise CLIError(f"{path} is not a readable Parquet file ({exc})") from None
    else:
        sep = "\t" if ext in (".tsv", ".tab") else ","
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
            if b"\x00" in head:
                raise CLIError(
                    f"{path} looks binary, not like a CSV file; pass a CSV or "
                    "Parquet (.parquet) file"
                )
            frame = pd.read_csv(path, sep=sep)
            if frame.shape[1] == 1 and sep == "," and ";" in str(frame.columns[0]):
                # A semicolon-separated file, as spreadsheets write it where
                # the comma is the decimal mark, or with decimal points: the
                # reading with more numeric columns is the right one.
                frame = max(
                    (pd.read_csv(path, sep=";", decimal=d) for d in (",", ".")),
                    key=lambda f: sum(f[c].dtype.kind in "biuf" for c in f.columns),
                )
        except CLIError:
            raise
        except pd.errors.EmptyDataError:
            raise CLIError(
                f"{path} has no columns; pass a table with a header row"
            ) from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise CLIError(f"{path} is not a readable CSV file ({exc})") from None
    if frame.shape[1] < 2:
        raise CLIError(
            f"{path} has {frame.shape[1]} column(s) ({list(map(str, frame.columns))}); "
            "expected a table with a header row, a target column and at least one "
            "feature column"
        )
    if len(frame) == 0:
        raise CLIError(f"{path} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def write_table(frame, path):
    """Write ``frame`` as CSV, or Parquet when the name ends in .parquet."""
    if os.path.splitext(path)[1].lower() in PARQUET:
        require("pyarrow", "parquet", "Writing Parquet files")
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def check_outputs(paths, inputs, force):
    """Refuse to overwrite an existing file without ``--force``, and never
    write over an input file."""
    inputs = {os.path.realpath(p) for p in inputs}
    seen = {}
    for option, path in paths.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real in inputs:
            raise CLIError(
                f"{option} {path} is the input file; choose another name (the input "
                "is never modified)",
                code=2,
            )
        if real in seen:
            raise CLIError(
                f"{option} and {seen[real]} both name {path}; give them different names",
                code=2,
            )
        seen[real] = option
        if os.path.exists(path) and not force:
            raise CLIError(
                f"{option} {path} already exists; pass --force to overwrite it",
                code=2,
            )
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise CLIError(f"{option} {path}: folder {folder} does not exist", code=2)


def find_column(frame, name, option):
    """``name`` if it is a column of ``frame``; otherwise a usage error that
    lists the columns and suggests the closest one."""
    columns = list(frame.columns)
    if name in columns:
        return name
    lower = {c.lower(): c for c in columns}
    close = [lower[name.lower()]] if name.lower() in lower else []
    close = close or difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(map(repr, columns[:30])) + (" ..." if len(columns) > 30 else "")
    raise CLIError(
        f"{option} {name!r} is not a column of the table.{hint} Columns: {shown}",
        code=2,
    )


def split_target(frame, target, drop_missing):
    """Rows to use, their labels and the feature columns, after checking the
    target. Labels are kept as given (strings stay strings)."""
    y = frame[target]
    missing = y.isna().to_numpy()
    if missing.any():
        if not drop_missing:
            raise CLIError(
                f"target column {target!r} has {int(missing.sum())} missing value(s) "
                f"out of {len(y)}; fill them in, or pass --drop-missing-target to "
                "leave those rows out"
            )
    rows = np.flatnonzero(~missing)
    y = y[~missing]
    if y.dtype.kind == "f":
        if np.all(np.mod(y.to_numpy(), 1) == 0):
            y = y.astype(np.int64)
        elif y.nunique() > 20:
            raise CLIError(
                f"target column {target!r} holds {y.nunique()} distinct decimal values; "
                "finding mislabeled rows needs class labels"
            )
    labels = y.to_numpy()
    if labels.dtype == object:
        labels = labels.astype(str)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        only = classes[:1].tolist()[0]
        raise CLIError(
            f"target column {target!r} has only one class ({only!r}); finding "
            "label issues needs at least two classes"
        )
    if counts.min() < 2:
        rare = classes[counts < 2]
        if labels.dtype.kind in "iuf" and len(classes) > 20:
            raise CLIError(
                f"target column {target!r} holds {len(classes)} distinct values over "
                f"{len(labels)} rows, {len(rare)} of them on a single row: it looks "
                "like a numeric target, and these commands need class labels"
            )
        shown = rare[:10].tolist()
        more = f" and {len(rare) - 10} more" if len(rare) > 10 else ""
        raise CLIError(
            f"target column {target!r}: class(es) {shown}{more} have a single "
            "row; every class needs at least two rows"
        )
    features = frame.drop(columns=[target])
    return rows, labels, features


def feature_preprocessor(features, warn):
    """A ``ColumnTransformer`` for the feature columns: numeric columns are
    imputed with their median (plus a missing-value indicator) and scaled;
    other columns are imputed with a "missing" category and one-hot encoded.
    All-missing and identifier-like columns (a distinct text value on every
    row) are left out, each with a warning through ``warn``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = [], []
    n = len(features)
    for col in features.columns:
        values = features[col]
        frac = float(values.isna().mean())
        if frac == 1.0:
            warn(f"feature column {col!r} is empty (every value missing); left out")
            continue
        if frac > MISSING_WARN:
            warn(
                f"feature column {col!r} has {frac:.0%} missing values; they are "
                "filled in, and the column may carry little information"
            )
        if values.dtype.kind in "biuf" and values.dtype.kind != "b":
            numeric.append(col)
        else:
            distinct = values.dropna().astype(str).nunique()
            if n > 20 and distinct == values.notna().sum():
                warn(
                    f"feature column {col!r} has a different text value on every row "
                    "(an identifier?); left out"
                )
                continue
            categorical.append(col)
    if not numeric and not categorical:
        raise CLIError("no usable feature column is left besides the target")
    steps = []
    if numeric:
        steps.append(
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True),
                    StandardScaler(),
                ),
                numeric,
            )
        )
    if categorical:
        steps.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=30,
                        sparse_output=False,
                    ),
                ),
                categorical,
            )
        )
    return ColumnTransformer(steps, sparse_threshold=0.0), numeric, categorical


def as_text_columns(features, categorical):
    """A copy of ``features`` whose categorical columns hold strings (mixed
    types would break the encoder), missing values kept as NaN."""
    out = features.copy()
    for col in categorical:
        values = out[col]
        out[col] = values.where(values.isna(), values.astype(str)).astype(object)
    return out
