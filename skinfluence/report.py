"""A self-contained HTML page of label issues: settings, counts, figures and
the flagged rows as a sortable table.

The page needs no network and no other file: styles and the sorting script
are inline and every image is a ``data:`` URI. It is written without
matplotlib or pandas; figures are passed in as PNG bytes.
"""

import base64
import html
import numbers
import struct
import zlib

import numpy as np

__all__ = ["gray_png", "label_issues_html"]


def gray_png(image, scale=4):
    """PNG bytes of a 2-d array drawn as gray levels, dark = high values (as
    digits are drawn), each pixel enlarged ``scale`` times.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.report import gray_png
    >>> gray_png(np.eye(8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be 2-d; got shape {img.shape}.")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"scale must be a positive integer; got {scale!r}.")
    finite = img[np.isfinite(img)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    level = np.zeros_like(img) if hi <= lo else (img - lo) / (hi - lo)
    level = np.nan_to_num(level, nan=0.0, posinf=1.0, neginf=0.0)
    pixels = (255 * (1 - level)).round().astype(np.uint8)
    pixels = np.kron(pixels, np.ones((scale, scale), dtype=np.uint8))
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _data_uri(png):
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(value):
    if isinstance(value, bytes):
        return (
            f'<td><img class="row-image" alt="row image" src="{_data_uri(value)}"></td>'
        )
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return '<td data-v="">&mdash;</td>'
        # JavaScript's parseFloat reads "Infinity", not Python's "inf".
        key = repr(float(value)).replace("inf", "Infinity")
        return f'<td data-v="{key}">{float(value):.4g}</td>'
    if isinstance(value, (bool, np.bool_)):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, (int, np.integer)):
        return f'<td data-v="{int(value)}">{int(value)}</td>'
    return f"<td>{html.escape(str(value))}</td>"


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:middle}
th{background:#f3f4f6}table.sortable th{cursor:pointer;user-select:none}
table.sortable th:after{content:" \\2195";color:#999}
tr:nth-child(even) td{background:#fafafa}
.kv td:first-child{font-weight:600;background:#f7f7f7}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs figure{margin:0}
.figs img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:.6em}.gallery figure{margin:0;text-align:center;
font-size:.75em}.gallery img{image-rendering:pixelated;border:1px solid #ccc}
.note{color:#555;font-size:.9em}.flag{color:#b00020;font-weight:600}
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute("data-order") !== "asc";
      th.setAttribute("data-order", up ? "asc" : "desc");
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var xv = x.getAttribute("data-v"), yv = y.getAttribute("data-v");
        var r;
        if (xv !== null && yv !== null) {
          r = (xv === "" ? -Infinity : parseFloat(xv)) -
              (yv === "" ? -Infinity : parseFloat(yv));
        } else {
          r = x.textContent.localeCompare(y.textContent, undefined, {numeric: true});
        }
        return up ? r : -r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  table.setAttribute("data-sortable", "ready");
});
"""


def _kv_table(pairs):
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in pairs
    )
    return f'<table class="kv">{rows}</table>'


def label_issues_html(
    *,
    title,
    settings,
    counts,
    per_class,
    columns,
    rows,
    figures=(),
    images=None,
    metrics=(),
    notes=(),
):
    """The report page as a string.

    Parameters
    ----------
    title : str
    settings : list of (name, value)
        What was run and with which settings.
    counts : list of (name, value)
        Rows, classes, flagged, ...
    per_class : list of (class, rows, flagged)
    columns : list of str
        Header of the flagged-rows table.
    rows : list of list
        One list of cells per flagged row; numbers sort numerically.
    figures : list of (caption, png_bytes), default=()
    images : list of (caption, png_bytes) or None, default=None
        Flagged rows drawn as images (image-like data such as digits).
    metrics : list of (name, value), default=()
        Quality against known truth (the demo), when there is one.
    notes : list of str, default=()

    Returns
    -------
    page : str

    Examples
    --------
    >>> from skinfluence.report import label_issues_html
    >>> page = label_issues_html(title="t", settings=[("model", "logreg")],
    ...     counts=[("rows", 3)], per_class=[("a", 2, 1), ("b", 1, 0)],
    ...     columns=["row", "given"], rows=[[0, "a"]])
    >>> '<table class="sortable" id="flagged">' in page
    True
    """
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    parts.append("<h2>What was run</h2>" + _kv_table(settings))
    parts.append("<h2>Counts</h2>" + _kv_table(counts))
    class_rows = "".join(
        f"<tr><td>{html.escape(str(c))}</td>{_cell(int(n))}{_cell(int(f))}</tr>"
        for c, n, f in per_class
    )
    parts.append(
        '<table class="sortable" id="classes"><thead><tr><th>class</th><th>rows</th>'
        f"<th>flagged</th></tr></thead><tbody>{class_rows}</tbody></table>"
    )
    if metrics:
        parts.append("<h2>Against the known wrong labels</h2>" + _kv_table(metrics))
    if figures:
        figs = "".join(
            f'<figure><img alt="{html.escape(c)}" src="{_data_uri(p)}">'
            f"<figcaption>{html.escape(c)}</figcaption></figure>"
            for c, p in figures
        )
        parts.append(f'<h2>Figures</h2><div class="figs">{figs}</div>')
    if images:
        gallery = "".join(
            f'<figure><img class="row-image" alt="{html.escape(c)}" '
            f'src="{_data_uri(p)}"><figcaption>{html.escape(c)}</figcaption></figure>'
            for c, p in images
        )
        parts.append(
            f'<h2>Flagged rows as images</h2><div class="gallery">{gallery}</div>'
        )
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    parts.append(
        f"<h2>Flagged rows ({len(rows)})</h2>"
        '<p class="note">Click a column header to sort by it.</p>'
        f'<table class="sortable" id="flagged"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)
