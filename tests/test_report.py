"""The HTML report page and its PNG encoder."""

import numpy as np
import pytest

from skinfluence.report import gray_png, label_issues_html


def test_gray_png_decodes_to_the_image():
    imread = pytest.importorskip("matplotlib.image").imread
    import io

    img = np.arange(12.0).reshape(3, 4)
    decoded = imread(io.BytesIO(gray_png(img, scale=2)), format="png")
    assert decoded.shape == (6, 8)
    # Dark = high, each pixel doubled.
    expected = 1 - img / img.max()
    np.testing.assert_allclose(decoded[::2, ::2], expected, atol=1 / 255)
    np.testing.assert_allclose(decoded[1::2, 1::2], expected, atol=1 / 255)
    with pytest.raises(ValueError, match="2-d"):
        gray_png(np.zeros(4))


def test_page_escapes_the_users_values():
    page = label_issues_html(
        title="<b>t</b>",
        settings=[("data", "x.csv")],
        counts=[("rows", 2)],
        per_class=[("<a>", 1, 1)],
        columns=["row", "value"],
        rows=[[0, "<script>alert(1)</script>"], [1, float("nan")]],
    )
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;a&gt;" in page and "<b>t</b>" not in page
    assert page.count("<script>") == 1  # only the sorting script


def test_numbers_sort_numerically():
    page = label_issues_html(
        title="t",
        settings=[],
        counts=[],
        per_class=[],
        columns=["score"],
        rows=[[0.5], [10], [2.25]],
    )
    assert 'data-v="0.5"' in page and 'data-v="10"' in page
    assert 'data-v="2.25"' in page


def test_infinite_numbers_sort_as_numbers():
    # The page's sort reads data-v with JavaScript's parseFloat, which knows
    # "Infinity" but not Python's "inf".
    page = label_issues_html(
        title="t",
        settings=[],
        counts=[],
        per_class=[],
        columns=["value"],
        rows=[[float("inf")], [-np.inf], [1.5]],
    )
    assert 'data-v="Infinity"' in page and 'data-v="-Infinity"' in page
    assert 'data-v="inf"' not in page


def test_gray_png_bad_scale_and_empty_image():
    with pytest.raises(ValueError, match="scale"):
        gray_png(np.eye(3), scale=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "All-NaN slice" from numpy
        assert gray_png(np.full((2, 2), np.nan))[:4] == b"\x89PNG"
