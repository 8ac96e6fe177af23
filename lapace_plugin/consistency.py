"""The learned consistency check: rows whose numbers the fitted L-GMVAE finds far less likely than real rows.

Declared relations and the pair filter catch what someone named; this check catches what nobody declared. A row's
score is its negative ELBO under the L-GMVAE given its class (the training loss of one row: reconstruction error
plus the KL terms, at the encoder's mean, with the fit's weights). At the end of ``fit``, every class's threshold is
the :data:`QUANTILE` quantile of the scores of the held-out real rows of that class (the validation split training
stopped on, never trained on), so that about 1% of real rows would be rejected. A candidate counterfactual scoring
above its target class's threshold is rejected like one holding an unseen pair (``Lapace(consistency=True)``), and
the study's metric ``consistency_violations`` is the share of counterfactuals above it, beside the share of real
held-out rows of the target class (``heldout_consistency_violations``).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

import numpy as np
import torch

QUANTILE = 0.99
"""Share of held-out real rows of a class whose score is at most the class's threshold."""

CHUNK = 8192


def scores(model: Any, x: np.ndarray, labels: np.ndarray, continuous_weight: float, kl_weight: float, device: Any) -> np.ndarray:
    """Negative ELBO per encoded row ``x (N, D)`` under class ``labels (N,)``, ``(N,)`` (lower: more typical).

    Each distinct (row, class) is scored once: neighbouring points of a path often snap to the same row (adult: 36% of
    the target-class points of 200 queries' paths are distinct), and a score costs a decoding per component.
    """
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(x):
        return np.zeros(0)
    keyed = np.concatenate([x, labels[:, None].astype(np.float32)], axis=1)
    distinct, inverse = np.unique(keyed, axis=0, return_inverse=True)
    out = []
    with torch.no_grad():
        for start in range(0, len(distinct), CHUNK):
            xt = torch.as_tensor(distinct[start : start + CHUNK, :-1], device=device)
            yt = torch.as_tensor(distinct[start : start + CHUNK, -1].astype(np.int64), device=device)
            out.append(model.row_loss(xt, yt, continuous_weight, kl_weight)[0].cpu().numpy())
    return np.concatenate(out)[inverse.reshape(-1)]


class ConsistencyCheck:
    """Per-class thresholds on :func:`scores`, learned from held-out real rows.

    Parameters
    ----------
    thresholds
        ``(L,)`` score above which a row of each class is inconsistent (the largest float for a class without
        held-out rows: nothing is rejected).
    continuous_weight, kl_weight
        The fit's ELBO weights, so scores are those training minimised.
    """

    def __init__(self, thresholds: np.ndarray, continuous_weight: float, kl_weight: float) -> None:
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.continuous_weight, self.kl_weight = float(continuous_weight), float(kl_weight)

    @classmethod
    def fit(cls, model: Any, x: np.ndarray, labels: np.ndarray, continuous_weight: float, kl_weight: float, device: Any) -> "ConsistencyCheck":
        """Thresholds from held-out encoded rows ``x`` with their classes ``labels``."""
        s = scores(model, x, labels, continuous_weight, kl_weight, device)
        thresholds = np.full(model.n_classes, np.finfo(np.float64).max)
        for c in range(model.n_classes):
            own = np.sort(s[labels == c])
            if len(own):  # the smallest score at or above QUANTILE of them: at most 1 - QUANTILE lie above
                thresholds[c] = float(own[int(np.ceil(QUANTILE * len(own))) - 1])
        return cls(thresholds, continuous_weight, kl_weight)

    def inconsistent(self, model: Any, x: np.ndarray, labels: np.ndarray, device: Any) -> np.ndarray:
        """Whether each encoded row scores above its class's threshold, ``(N,)`` bool (NaN scores count as above)."""
        labels = np.asarray(labels, dtype=np.int64)
        s = scores(model, x, labels, self.continuous_weight, self.kl_weight, device)
        return ~(s <= self.thresholds[labels])

    def to_arrays(self) -> Dict[str, np.ndarray]:
        return {"consistency.thresholds": self.thresholds, "consistency.weights": np.array([self.continuous_weight, self.kl_weight])}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ConsistencyCheck":
        weights = np.asarray(arrays["consistency.weights"], dtype=np.float64)
        return cls(arrays["consistency.thresholds"], float(weights[0]), float(weights[1]))
