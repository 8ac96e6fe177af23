"""C-CHVAE: growing-sphere search in the latent space of a conditional VAE (our implementation, after Pawelczyk,
Broelemann and Kasneci, "Learning Model-Agnostic Counterfactual Explanations for Tabular Data", WWW 2020).

The query is encoded to its latent mean ``z``; points are drawn in spherical layers ``low <= ||z' - z||_2 < high``
of growing radius (``step`` wide, ``n_samples`` per layer), decoded with the query's immutable features as the
condition (:class:`~.vae.TabularVAE`), snapped to valid raw rows (immutables copied back) and classified by the
model. The first layer holding a point the model assigns to the target class ends the search; its valid point
nearest to the query in the ``(1/d)``-L1 distance is the counterfactual. All queries still searching share one
``predict_proba`` call per layer. The model is a black box: only ``predict_proba`` is called.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from ...distance import feature_distances
from ...schema import FeatureSchema
from ..frames import predicted_class
from .vae import LatentBaseline


class CCHVAE(LatentBaseline):
    """C-CHVAE (our implementation; see the module docstring). ``n_counterfactuals=k`` returns the ``k`` nearest
    distinct valid points of the first successful layer.

    Parameters
    ----------
    schema, immutable
        See :class:`~.base.Baseline`; the VAE is conditioned on the immutable features.
    n_samples
        Latent points drawn per layer and query.
    step
        Width of a layer (latent units).
    max_layers
        Layers searched before a query is reported as failed.
    vae_params
        Keyword arguments of :class:`~.vae.TabularVAE` (latent size, epochs, ...).
    random_state
        Seed of the VAE and of the latent draws.
    vae
        A VAE already trained for these rows (:class:`~.vae.LatentBaseline`); ``None``: ``fit`` trains one.
    """

    name = "cchvae"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        n_samples: int = 300,
        step: float = 0.1,
        max_layers: int = 50,
        vae_params: Optional[dict] = None,
        random_state: Any = None,
        vae: Any = None,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable, vae_params=vae_params, random_state=random_state, vae=vae)
        self.n_samples, self.step, self.max_layers = n_samples, step, max_layers

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.RandomState(self.random_state)
        encoded = self.vae_.encoder_.encode(queries)
        centre = self.vae_.encode(encoded)
        found = [None] * len(queries)  # per query: its chosen raw rows
        active = np.arange(len(queries))
        for layer in range(self.max_layers):
            if len(active) == 0:
                break
            owner = np.repeat(active, self.n_samples)
            z = centre[owner] + _ring(rng, len(owner), centre.shape[1], layer * self.step, (layer + 1) * self.step)
            with torch.no_grad():
                soft = self.vae_.decode(torch.as_tensor(z, dtype=torch.float32), self.vae_.condition(encoded[owner])).numpy()
            points = self.vae_.to_raw(soft, encoded[owner])
            valid = predicted_class(self.predict_proba_, points) == targets[owner]
            for q in active:
                mine = np.flatnonzero((owner == q) & valid)
                if len(mine):
                    found[q] = self._nearest(queries.iloc[[q]], points.iloc[mine], k)
            active = np.array([q for q in active if found[q] is None], dtype=int)
        for q in active:
            self.failures[queries.index[q]] = "no point the model assigns to class %d within latent radius %g" % (
                targets[q], self.max_layers * self.step)
        picked = [(q, rows) for q, rows in enumerate(found) if rows is not None]
        if not picked:
            return self.X_train_.iloc[:0], np.zeros(0, dtype=int)
        rows = pd.concat([r for _, r in picked], ignore_index=True)
        return rows, np.concatenate([np.full(len(r), q) for q, r in picked])

    def _nearest(self, query: pd.DataFrame, points: pd.DataFrame, k: int) -> pd.DataFrame:
        """The ``k`` distinct ``points`` nearest to the one-row ``query`` (ties by draw order)."""
        points = points.drop_duplicates()
        dist = feature_distances(self.schema_, query.iloc[np.zeros(len(points), dtype=int)], points).mean(axis=1)
        order = np.lexsort((np.arange(len(points)), dist))[:k]
        return points.iloc[order]


def _ring(rng: np.random.RandomState, n: int, dim: int, low: float, high: float) -> np.ndarray:
    """``n`` offsets uniform in direction with an L2 norm uniform in ``[low, high)``."""
    direction = rng.normal(size=(n, dim))
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    return direction * rng.uniform(low, high, size=(n, 1))
