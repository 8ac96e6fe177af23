"""Latent paths: interpolation towards target centroids, batched decoding, constraint repair, selection."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .constraints import EncodedConstraints
from .lgmvae import LGMVAE

DECODE_CHUNK = 65536


def interpolate(z_start: np.ndarray, z_end: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Points ``(1 - tau) z_start + tau z_end``.

    ``z_start (n, L)`` and ``z_end (n, k, L)`` give ``(n, k, len(taus), L)``.
    """
    t = taus.reshape(1, 1, -1, 1).astype(np.float32)
    return (1.0 - t) * z_start[:, None, None, :] + t * z_end[:, :, None, :]


def decode(model: LGMVAE, z: np.ndarray, device: torch.device) -> np.ndarray:
    """Decoder probabilities for latent points ``z (N, L)``, in chunks; returns ``(N, D)`` float32."""
    out = np.empty((len(z), model.input_dim), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(z), DECODE_CHUNK):
            zt = torch.as_tensor(z[start : start + DECODE_CHUNK], device=device)
            out[start : start + DECODE_CHUNK] = model.decode(zt).cpu().numpy()
    return out


def repair(
    model: LGMVAE,
    z: np.ndarray,
    factuals: np.ndarray,
    constraints: EncodedConstraints,
    device: torch.device,
    steps: int = 25,
    learning_rate: float = 0.05,
    pull: float = 0.1,
    offset: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Gradient steps on latent points so their decodings satisfy the constraints; returns decoded ``(N, D)``.

    Minimises ``penalty(Dec(z) + offset, factual) + pull * ||z - z0||^2`` from ``z0 = z`` (``offset``: the
    reconstruction correction of corrected paths, zero by default) and returns ``Dec(z) + offset``. The
    caller still hard-projects the result, so the constraints hold exactly afterwards.
    """
    z0 = torch.as_tensor(z, device=device)
    f = torch.as_tensor(factuals, device=device)
    shift = torch.as_tensor(offset if offset is not None else np.zeros_like(factuals), device=device)
    zv = z0.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([zv], lr=learning_rate)
    for _ in range(steps):
        loss = constraints.penalty(model.decode(zv) + shift, f).sum() + pull * ((zv - z0) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return (model.decode(zv) + shift).cpu().numpy()


def first_valid_step(valid: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis of ``valid (..., S)``; -1 where there is none."""
    has = valid.any(-1)
    return np.where(has, valid.argmax(-1), -1)


def feature_distance(a: np.ndarray, b: np.ndarray, n_continuous: int, groups: list, n_features: Optional[int] = None) -> np.ndarray:
    """Mean per-feature L1 distance between snapped encoded rows (continuous scaled, categorical 0/1)."""
    d = np.abs(a[..., :n_continuous] - b[..., :n_continuous]).sum(-1)
    for _, sl in groups:
        d = d + 0.5 * np.abs(a[..., sl] - b[..., sl]).sum(-1)
    return d / float(n_features or (n_continuous + len(groups)))
