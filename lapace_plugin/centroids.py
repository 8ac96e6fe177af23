"""Settling the L-GMVAE's centroids so that every target is a valid, distinct decoded row."""

from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np

from .rules import assigned_to

# latent points -> (snapped encoded rows (N, D), probabilities (N, L), plausible (N,): no rare pair of states)
DecodeAndClassify = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray, np.ndarray]]


class SettledCentroids(NamedTuple):
    latents: np.ndarray  # (K, latent_dim) centroids mu_c after settling
    points: np.ndarray  # (K, D) snapped decoded centroids
    proba: np.ndarray  # (K, L) classifier probabilities of the decoded centroids
    valid: np.ndarray  # (K,) decoded centroid assigned to its own class, and plausible
    moved: List[int]  # components that were moved
    initial_validity: float  # share valid before settling


def settle_centroids(
    latents: np.ndarray,
    z_train: np.ndarray,
    comp_train: np.ndarray,
    labels: np.ndarray,
    components_per_class: int,
    decode_and_classify: DecodeAndClassify,
) -> SettledCentroids:
    """Decode and classify every centroid; move invalid or duplicate ones onto valid, distinct points.

    Components are visited per class from the busiest (most training rows) to the least busy. A centroid
    whose decoding the classifier does not assign to its own class (or that is not plausible: it holds a pair of
    states that real rows do not, see :mod:`lapace_plugin.support`), or that decodes to the same row as a
    busier centroid of its class, is moved to the nearest latent point, among its members' encodings
    (``z_train`` rows whose most responsible component it is) and the segment towards their mean, that
    decodes to a valid, distinct row; failing that, among encodings spread over its whole class (components that
    collapsed onto one another share their members). One that cannot be made valid stays invalid.

    Parameters
    ----------
    latents
        Centroids ``(K, latent_dim)``, K = classes x ``components_per_class``.
    z_train, comp_train, labels
        Latent means ``(n, latent_dim)``, most responsible component ``(n,)`` and predicted label ``(n,)`` of
        the training rows.
    decode_and_classify
        Latent points ``(N, latent_dim)`` -> (snapped encoded rows ``(N, D)``, probabilities ``(N, L)``, plausible
        ``(N,)``).
    """
    m = components_per_class
    mu = latents.copy()
    points, proba, plausible = decode_and_classify(mu)
    owner = np.arange(len(mu)) // m
    valid = assigned_to(proba, owner) & plausible
    initial = float(valid.mean())
    moved: List[int] = []
    for label in range(len(mu) // m):
        owned = np.arange(label * m, (label + 1) * m)
        members = np.array([(comp_train == k).sum() for k in owned])
        accepted: List[np.ndarray] = []
        for k in owned[np.argsort(-members, kind="stable")]:
            if valid[k] and not contains(accepted, points[k]):
                accepted.append(points[k])
                continue
            pool = z_train[comp_train == k]
            if len(pool) == 0:
                pool = z_train[labels == label]
            choice = _nearest_valid_distinct(mu[k], pool, label, accepted, decode_and_classify)
            if choice is None:  # collapsed components share members: look across the whole class, near to far
                choice = _nearest_valid_distinct(mu[k], z_train[labels == label], label, accepted, decode_and_classify, spread=True)
            if choice is None:
                if valid[k]:
                    accepted.append(points[k])  # valid but a duplicate: no distinct valid point was found
                continue
            mu[k], points[k], proba[k] = choice
            valid[k] = True
            moved.append(int(k))
            accepted.append(points[k])
    return SettledCentroids(mu, points, proba, valid, moved, initial)


def _nearest_valid_distinct(
    mu_k: np.ndarray,
    pool: np.ndarray,
    label: int,
    accepted: List[np.ndarray],
    decode_and_classify: DecodeAndClassify,
    *,
    spread: bool = False,
) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The candidate nearest ``mu_k`` that decodes to a valid row not among ``accepted``: among the 256 pool points
    nearest it (``spread``: 512 pool points from nearest to farthest) and the segment towards the pool's mean."""
    if len(pool) == 0:
        return None
    order = np.argsort(((pool - mu_k) ** 2).sum(1), kind="stable")
    nearest = pool[order[np.unique(np.linspace(0, len(order) - 1, 512).astype(int))] if spread else order[:256]]
    ts = np.linspace(0.1, 1.0, 10, dtype=np.float32)[:, None]
    segment = (1 - ts) * mu_k + ts * pool.mean(0)
    candidates = np.concatenate([segment, nearest]).astype(np.float32)
    points, proba, plausible = decode_and_classify(candidates)
    ok = assigned_to(proba, label) & plausible & np.array([not contains(accepted, p) for p in points])
    if not ok.any():
        return None
    dist = ((candidates - mu_k) ** 2).sum(1)
    i = int(np.flatnonzero(ok)[np.argmin(dist[ok])])
    return candidates[i], points[i], proba[i]


def contains(rows: List[np.ndarray], row: np.ndarray) -> bool:
    """Whether ``row`` equals one of ``rows``."""
    return any(np.array_equal(r, row) for r in rows)
