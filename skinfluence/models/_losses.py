"""Per-row training losses shared by the adapters."""

import torch
import torch.nn.functional as F


def binary_logistic_loss(output, target):
    """Log-loss of a single logit column against 0/1 targets, per row."""
    z = output.reshape(-1)
    return F.binary_cross_entropy_with_logits(z, target.to(z.dtype), reduction="none")


def multinomial_loss(output, target):
    """Softmax cross-entropy against class indices, per row."""
    return F.cross_entropy(output, target, reduction="none")


def ovr_logistic_loss(output, target):
    """Sum over classes of one-vs-rest logistic losses, per row."""
    onehot = F.one_hot(target, output.shape[1]).to(output.dtype)
    return F.binary_cross_entropy_with_logits(output, onehot, reduction="none").sum(1)


def squared_error(output, target):
    """Sum over outputs of squared residuals, per row."""
    diff = output.reshape(output.shape[0], -1) - target.reshape(target.shape[0], -1)
    return (diff**2).sum(1)


def half_mean_squared_error(output, target):
    """Half the mean over outputs of squared residuals, per row (sklearn MLP)."""
    diff = output.reshape(output.shape[0], -1) - target.reshape(target.shape[0], -1)
    return 0.5 * (diff**2).mean(1)


def sigmoid_proba(output):
    p1 = torch.sigmoid(output.reshape(-1))
    return torch.stack([1 - p1, p1], dim=1)


def softmax_proba(output):
    return torch.softmax(output, dim=1)


def class_index_encoder(device):
    def encode(y):
        return torch.as_tensor(y, dtype=torch.long, device=device)

    return encode


def float_target_encoder(device, dtype, n_outputs):
    def encode(y):
        t = torch.as_tensor(y, device=device).to(dtype)
        return t.reshape(t.shape[0], n_outputs)

    return encode
