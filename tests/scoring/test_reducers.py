"""Streaming reductions against a dense reference (the whole matrix at once)."""

import os

import numpy as np
import pytest
import torch

from skinfluence.scoring import (
    Dense,
    Diagonal,
    TopK,
    check_output_path,
    memmap_output,
)


def _reference_topk(S, k):
    """Per row: the k largest and k smallest entries (ties to the smaller
    index) as a dense array with everything else zero, from one lexsort of
    the full matrix."""
    m, n = S.shape
    out = np.zeros_like(S)
    top = np.zeros((m, min(k, n)), dtype=int)
    bottom = np.zeros_like(top)
    cols = np.arange(n)
    for i in range(m):
        finite = ~np.isnan(S[i])
        desc = np.lexsort((cols, -np.nan_to_num(S[i], nan=-np.inf)))
        asc = np.lexsort((cols, np.nan_to_num(S[i], nan=np.inf)))
        top[i], bottom[i] = desc[:k], asc[:k]
        for j in np.concatenate([desc[:k], asc[:k]]):
            if finite[j]:
                out[i, j] = S[i, j]
    return out, top, bottom


def _stream(reducer, S, chunk):
    n = S.shape[1]
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        reducer.add(sl, S[:, sl])
    return reducer


@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("chunk", [1, 4, 11, 50])
def test_topk_matches_dense_reference_with_ties(k, chunk):
    gen = torch.Generator().manual_seed(k * 100 + chunk)
    # Few distinct values: many ties, which must go to the smaller index.
    S = torch.randint(-3, 4, (6, 37), generator=gen).double()
    top = _stream(TopK(k).start(6, 37), S, chunk)
    dense, ref_top, ref_bottom = _reference_topk(S.numpy(), k)
    csr = top.to_csr()
    np.testing.assert_array_equal(csr.toarray(), dense)
    assert csr.nnz == 6 * 2 * k
    idx, vals = top.proponents()
    np.testing.assert_array_equal(idx, ref_top)
    np.testing.assert_array_equal(vals, np.take_along_axis(S.numpy(), ref_top, 1))
    idx, vals = top.opponents()
    np.testing.assert_array_equal(idx, ref_bottom)


def test_topk_partials_merged_in_order_equal_a_single_pass():
    gen = torch.Generator().manual_seed(1)
    S = torch.randn(5, 200, generator=gen)
    whole = TopK(4).start(5, 200)
    whole.add(slice(0, 200), S)
    parts = [
        (sl, TopK(4).partial(sl, S[:, sl]))
        for sl in (slice(0, 64), slice(64, 150), slice(150, 200))
    ]
    merged = TopK(4).start(5, 200)
    for sl, part in parts:
        merged.merge(sl, part)
    assert (whole.to_csr() != merged.to_csr()).nnz == 0


def test_topk_more_than_the_rows_keeps_each_row_once_and_skips_nan():
    S = torch.tensor([[1.0, float("nan"), -2.0], [0.0, 5.0, 5.0]])
    top = _stream(TopK(5).start(2, 3), S, 2)
    dense, _, _ = _reference_topk(S.numpy(), 5)
    csr = top.to_csr()
    np.testing.assert_array_equal(csr.toarray(), dense)
    assert csr.indptr.tolist() == [0, 2, 5]  # NaN left out; overlap counted once


def test_dense_into_an_array_and_diagonal():
    gen = torch.Generator().manual_seed(2)
    S = torch.randn(4, 30, generator=gen)
    into = np.zeros((4, 30))
    res = _stream(Dense(into).start(4, 30), S, 7).result()
    assert res is into
    np.testing.assert_array_equal(into, S.double().numpy())
    res = _stream(Dense().start(4, 30, dtype=S.dtype), S, 7).result()
    assert torch.equal(res, S)
    with pytest.raises(ValueError, match="out has shape"):
        Dense(np.zeros((3, 30))).start(4, 30)
    d = torch.randn(30, generator=gen)
    diag = Diagonal().start(30, dtype=d.dtype)
    for s in range(0, 30, 8):
        diag.add(slice(s, s + 8), d[s : s + 8])
    assert torch.equal(diag.result(), d)


def test_memmap_output_writes_then_renames(tmp_path):
    path = tmp_path / "scores.npy"
    with memmap_output(path, (3, 4)) as arr:
        assert isinstance(arr, np.memmap)
        assert not path.exists()  # still under a temporary name
        arr[:] = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(np.load(path), np.arange(12).reshape(3, 4))
    assert os.listdir(tmp_path) == ["scores.npy"]
    with pytest.raises(ValueError, match="overwrite=True"):
        with memmap_output(path, (3, 4)):
            pass
    with memmap_output(path, (2, 2), overwrite=True) as arr:
        arr[:] = 1
    assert np.load(path).shape == (2, 2)


def test_interrupted_memmap_leaves_nothing_under_the_name(tmp_path):
    path = tmp_path / "scores.npy"
    with pytest.raises(KeyboardInterrupt):
        with memmap_output(path, (3, 4)) as arr:
            arr[0] = 1
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_output_path_errors(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="out must be a file path"):
        check_output_path(3)
    with pytest.raises(ValueError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.npy")
    with pytest.raises(ValueError, match="is a folder"):
        check_output_path(tmp_path)
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ValueError, match="not writable"):
        check_output_path(tmp_path / "x.npy")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_output_path_in_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            check_output_path(folder / "x.npy")
    finally:
        folder.chmod(0o700)
