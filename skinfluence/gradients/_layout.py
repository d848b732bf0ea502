"""Flat layout of a parameter subset, with Linear layers kept factorisable."""

from typing import NamedTuple

import torch

__all__ = ["LinearGroup", "ParamLayout"]


class LinearGroup(NamedTuple):
    """A ``torch.nn.Linear`` layer whose per-row gradient is ``outer(delta, a)``.

    Its block of a flat vector is the matrix ``[W | b]`` (``out`` rows,
    ``inp`` (+1 with bias) columns) in row-major order.
    """

    module: str
    weight: str
    bias: str | None
    out: int
    inp: int

    @property
    def cols(self):
        return self.inp + (self.bias is not None)

    @property
    def size(self):
        return self.out * self.cols


class ParamLayout:
    """Maps a subset of named parameters to and from flat vectors.

    Linear layers that are called once per forward pass on 2-D input form
    :class:`LinearGroup` blocks, whose per-row gradients are kept as the two
    factors ``(a, delta)``; every other selected parameter is *dense* and
    flattened in order after the groups.

    Parameters
    ----------
    view : ModelView
    names : list of str
        Selected parameter names.
    X_probe : Tensor
        A few input rows, used to see how each Linear layer is called.
    factorise : bool, default=True
        Whether to use the factorised form for Linear layers.
    """

    def __init__(self, view, names, X_probe, factorise=True):
        self.names = list(names)
        modules = dict(view.module.named_modules())
        groups = []
        if factorise:
            calls = self._probe_linear_calls(view, X_probe)
            for mod_name, (n_calls, ndim) in calls.items():
                prefix = mod_name + "." if mod_name else ""
                w, b = prefix + "weight", prefix + "bias"
                if n_calls != 1 or ndim != 2 or w not in self.names:
                    continue
                mod = modules[mod_name]
                bias = b if (mod.bias is not None and b in self.names) else None
                groups.append(
                    LinearGroup(mod_name, w, bias, mod.out_features, mod.in_features)
                )
        grouped = {g.weight for g in groups} | {g.bias for g in groups if g.bias}
        # Keep groups in the order the parameters are registered.
        order = {n: i for i, n in enumerate(self.names)}
        self.groups = sorted(groups, key=lambda g: order[g.weight])
        self.dense = [n for n in self.names if n not in grouped]
        self.shapes = {n: tuple(view.params[n].shape) for n in self.names}
        offset = 0
        self.group_slices = []
        for g in self.groups:
            self.group_slices.append(slice(offset, offset + g.size))
            offset += g.size
        self.dense_start = offset
        self.dense_slices = {}
        for n in self.dense:
            size = int(torch.Size(self.shapes[n]).numel())
            self.dense_slices[n] = slice(offset, offset + size)
            offset += size
        self.p = offset
        self.p_dense = offset - self.dense_start
        # Entries of one row's factorised gradient: the input (cols) and
        # output (out) factors of every Linear group, plus the dense part.
        self.factor_width = self.p_dense + sum(g.cols + g.out for g in self.groups)

    @property
    def segments(self):
        """Slices of the flat order: one per Linear group, then one for all
        dense parameters (when there are any)."""
        out = list(self.group_slices)
        if self.p_dense:
            out.append(slice(self.dense_start, self.p))
        return out

    def segment_vector(self, values, like):
        """A flat (p,) vector holding ``values[l]`` on segment ``l``."""
        vec = torch.empty(self.p, dtype=like.dtype, device=like.device)
        for s, v in zip(self.segments, values):
            vec[s] = float(v)
        return vec

    @staticmethod
    def _probe_linear_calls(view, X_probe):
        calls, handles = {}, []
        for name, mod in view.module.named_modules():
            if isinstance(mod, torch.nn.Linear):
                calls[name] = [0, None]

                def hook(m, args, out, name=name):
                    calls[name][0] += 1
                    calls[name][1] = args[0].dim()

                handles.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad():
                view.forward(X_probe[:2])
        finally:
            for h in handles:
                h.remove()
        return {k: tuple(v) for k, v in calls.items()}

    def unflatten(self, flat):
        """Dict of parameter tensors (views of ``flat``); leading batch dims kept."""
        lead = flat.shape[:-1]
        out = {}
        for g, s in zip(self.groups, self.group_slices):
            block = flat[..., s].reshape(*lead, g.out, g.cols)
            out[g.weight] = block[..., : g.inp]
            if g.bias is not None:
                out[g.bias] = block[..., g.inp]
        for n in self.dense:
            out[n] = flat[..., self.dense_slices[n]].reshape(
                tuple(lead) + self.shapes[n]
            )
        return out

    def flatten(self, tensors, batch_dims=0):
        """Flat vector(s) from a dict of tensors with ``batch_dims`` leading dims."""
        parts = []
        for g in self.groups:
            W = tensors[g.weight]
            lead = W.shape[:batch_dims]
            if g.bias is not None:
                W = torch.cat([W, tensors[g.bias].unsqueeze(-1)], dim=-1)
            parts.append(W.reshape(*lead, -1))
        for n in self.dense:
            t = tensors[n]
            parts.append(t.reshape(*t.shape[:batch_dims], -1))
        return torch.cat(parts, dim=-1)

    def __repr__(self):
        return (
            f"ParamLayout(p={self.p}, linear_groups={[g.module for g in self.groups]}, "
            f"dense={self.dense})"
        )
