"""REVISE: gradient search on the latent code of a VAE (our implementation, after Joshi, Koyejo, Vijitbenjaronk,
Kim and Ghosh, "Towards Realistic Individual Recourse and Actionable Explanations in Black-Box Decision Making
Systems", 2019).

From the query's latent mean ``z``, Adam minimises ``loss(z) = CE(h(G(z)), target) + lambda * ||G(z) - x||_1`` where
``G`` is the VAE's decoder (:class:`~.vae.TabularVAE`, conditioned on the query's immutable features) and ``x`` the
encoded query. REVISE differentiates through the classifier ``h``; the study's classifiers are black boxes (a random
forest has no gradient), so ``h`` is a differentiable **surrogate**: a small MLP fitted to the model's probabilities
on the training rows. Every ``check_every`` steps the decoded points are snapped to valid raw rows (immutables
copied back) and classified by the **model itself**; a query's first point the model assigns to the target class
is its counterfactual.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ...schema import FeatureSchema
from ..frames import predicted_class, probabilities
from .vae import LatentBaseline, batches


class Revise(LatentBaseline):
    """REVISE (our implementation; see the module docstring). Returns one counterfactual per query.

    Parameters
    ----------
    schema, immutable
        See :class:`~.base.Baseline`; the VAE is conditioned on the immutable features.
    lambda_
        Weight of the L1 proximity term.
    lr
        Adam's learning rate on the latent code.
    max_steps
        Gradient steps before a query is reported as failed.
    check_every
        Steps between checks with the model.
    vae_params
        Keyword arguments of :class:`~.vae.TabularVAE`.
    surrogate_steps
        Adam updates of the surrogate MLP (batches of 256).
    random_state
        Seed of the VAE and the surrogate.
    vae
        A VAE already trained for these rows (:class:`~.vae.LatentBaseline`); ``None``: ``fit`` trains one.
    """

    name = "revise"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        lambda_: float = 0.5,
        lr: float = 0.1,
        max_steps: int = 300,
        check_every: int = 5,
        vae_params: Optional[dict] = None,
        surrogate_steps: int = 2000,
        random_state: Any = None,
        vae: Any = None,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable, vae_params=vae_params, random_state=random_state, vae=vae)
        self.lambda_, self.lr, self.max_steps, self.check_every = lambda_, lr, max_steps, check_every
        self.surrogate_steps = surrogate_steps

    def fit(self, X_train: pd.DataFrame, predict_proba: Any) -> "Revise":
        """See :meth:`~.vae.LatentBaseline.fit`; also trains the surrogate ``surrogate_``."""
        super().fit(X_train, predict_proba)
        encoded = torch.as_tensor(self.vae_.encoder_.encode(self.X_train_))
        soft_labels = torch.as_tensor(probabilities(predict_proba, self.X_train_), dtype=torch.float32)
        self.surrogate_ = _fit_surrogate(encoded, soft_labels, self.surrogate_steps, int(self.random_state or 0))
        return self

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        encoded = self.vae_.encoder_.encode(queries)
        x = torch.as_tensor(encoded)
        condition = self.vae_.condition(encoded)
        z = torch.tensor(self.vae_.encode(encoded), requires_grad=True)
        optimiser = torch.optim.Adam([z], lr=self.lr)
        target = torch.as_tensor(targets, dtype=torch.long)
        found = [None] * len(queries)
        active = np.ones(len(queries), dtype=bool)
        for step in range(self.max_steps + 1):
            if step % self.check_every == 0:
                with torch.no_grad():
                    soft = self.vae_.decode(z, condition).numpy()
                rows = np.flatnonzero(active)
                points = self.vae_.to_raw(soft[rows], encoded[rows])
                valid = predicted_class(self.predict_proba_, points) == targets[rows]
                for i in np.flatnonzero(valid):
                    found[rows[i]] = points.iloc[[i]]
                    active[rows[i]] = False
                if not active.any():
                    break
            decoded = self.vae_.decode(z, condition)
            per_query = F.cross_entropy(self.surrogate_(decoded), target, reduction="none")
            per_query = per_query + self.lambda_ * (decoded - x).abs().sum(dim=1)
            optimiser.zero_grad()
            (per_query * torch.as_tensor(active, dtype=torch.float32)).sum().backward()
            optimiser.step()
        for q in np.flatnonzero(active):
            self.failures[queries.index[q]] = "no point the model assigns to class %d after %d gradient steps" % (
                targets[q], self.max_steps)
        picked = [(q, rows) for q, rows in enumerate(found) if rows is not None]
        if not picked:
            return self.X_train_.iloc[:0], np.zeros(0, dtype=int)
        return pd.concat([r for _, r in picked], ignore_index=True), np.array([q for q, _ in picked], dtype=int)


def _fit_surrogate(encoded: torch.Tensor, soft_labels: torch.Tensor, steps: int, seed: int) -> nn.Module:
    """A 64-64 MLP on encoded rows fitted to the model's class probabilities (cross-entropy to soft labels)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(encoded.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, soft_labels.shape[1]))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    for batch in batches(torch.arange(len(encoded)), 256, steps, generator):
        loss = -(soft_labels[batch] * F.log_softmax(net(encoded[batch]), dim=1)).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
