"""A plain VAE over the paper's encoding, conditioned on the immutable features: the generative model that C-CHVAE
and REVISE search (:mod:`.cchvae`, :mod:`.revise`).

It encodes rows with the core's :class:`~lapace_plugin.encoding.TabularEncoder` (``typed=False``: continuous features
min-max scaled, categorical and ordinal features one-hot, the paper's LAPACE encoding) and decodes back through the
same encoder, so its rows are valid raw rows. As in C-CHVAE (Pawelczyk et al. 2020), the decoder also sees the
encoded immutable features, ``p(x | z, c)``: a search in the latent space keeps the factual's immutable features in
the condition, and the decoded point gets them back exactly.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ...encoding import TabularEncoder
from ...schema import FeatureSchema
from .base import Baseline


class TabularVAE:
    """A VAE of this package on raw rows: ``fit(X)``, then :meth:`encode`, :meth:`decode` and :meth:`to_raw`.

    Parameters
    ----------
    schema
        The feature schema (its ranges scale the continuous features).
    immutable
        Features the decoder is conditioned on and that decoded rows copy from their factual.
    latent_dim, hidden
        Latent size and width of the two hidden layers of the encoder and the decoder.
    steps, batch_size, lr
        Adam training settings: ``steps`` updates in all (whole shuffled passes over the rows, the last one cut), so
        a small dataset is not under-trained.
    random_state
        Seed of the initial weights and the batches.

    Attributes
    ----------
    fit_time_
        Seconds ``fit`` took.
    """

    def __init__(
        self,
        schema: FeatureSchema,
        immutable: Sequence[str] = (),
        latent_dim: int = 8,
        hidden: int = 64,
        steps: int = 3000,
        batch_size: int = 256,
        lr: float = 1e-3,
        random_state: Optional[int] = None,
    ) -> None:
        self.schema, self.immutable = schema, list(immutable)
        self.latent_dim, self.hidden = latent_dim, hidden
        self.steps, self.batch_size, self.lr = steps, batch_size, lr
        self.random_state = random_state

    def fit(self, X: pd.DataFrame) -> "TabularVAE":
        """Train on the raw rows ``X``; returns ``self``."""
        start = time.perf_counter()
        self.encoder_ = enc = TabularEncoder(self.schema, typed=False)
        self.condition_columns_ = np.concatenate(
            [np.atleast_1d(np.arange(enc.width)[enc.column(f)]) for f in self.immutable]
        ).astype(int) if self.immutable else np.zeros(0, dtype=int)
        data = torch.as_tensor(enc.encode(X))
        width, cond, h, z = enc.width, len(self.condition_columns_), self.hidden, self.latent_dim
        generator = torch.Generator().manual_seed(int(self.random_state or 0))
        torch.manual_seed(int(self.random_state or 0))
        self.encoder_net_ = nn.Sequential(nn.Linear(width, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2 * z))
        self.decoder_net_ = nn.Sequential(nn.Linear(z + cond, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, width))
        params = list(self.encoder_net_.parameters()) + list(self.decoder_net_.parameters())
        optimiser = torch.optim.Adam(params, lr=self.lr)
        for x in batches(data, self.batch_size, self.steps, generator):
            mu, logvar = self._moments(x)
            sample = mu + torch.randn(mu.shape, generator=generator) * torch.exp(0.5 * logvar)
            logits = self.decoder_net_(torch.cat([sample, x[:, self.condition_columns_]], dim=1))
            kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1)
            loss = (self._reconstruction(logits, x) + kl).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        self.encoder_net_.eval()
        self.decoder_net_.eval()
        self.fit_time_ = time.perf_counter() - start
        return self

    def _moments(self, x: torch.Tensor) -> "tuple":
        out = self.encoder_net_(x)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def _reconstruction(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per row: squared error of the continuous columns plus cross-entropy of every one-hot group."""
        nc = self.encoder_.n_continuous
        loss = ((torch.sigmoid(logits[:, :nc]) - x[:, :nc]) ** 2).sum(dim=1)
        for _, sl in self.encoder_.groups:
            loss = loss + F.cross_entropy(logits[:, sl], x[:, sl].argmax(dim=1), reduction="none")
        return loss

    def encode(self, encoded: np.ndarray) -> np.ndarray:
        """Latent means of encoded rows, ``(n, latent_dim)``."""
        with torch.no_grad():
            return self._moments(torch.as_tensor(encoded, dtype=torch.float32))[0].numpy()

    def condition(self, encoded: np.ndarray) -> torch.Tensor:
        """The decoder's condition (encoded immutable columns) of encoded rows."""
        return torch.as_tensor(np.asarray(encoded, dtype=np.float32)[:, self.condition_columns_])

    def decode(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Soft encoded rows (continuous columns in [0, 1], groups as probabilities), differentiable in ``z``."""
        logits = self.decoder_net_(torch.cat([z, condition], dim=1))
        parts = [torch.sigmoid(logits[:, : self.encoder_.n_continuous])]
        parts += [torch.softmax(logits[:, sl], dim=1) for _, sl in self.encoder_.groups]
        return torch.cat(parts, dim=1)

    def to_raw(self, soft: np.ndarray, factual_encoded: np.ndarray) -> pd.DataFrame:
        """Valid raw rows of soft encoded rows, the immutable columns set to the (aligned) factuals'."""
        snapped = self.encoder_.snap(np.asarray(soft, dtype=np.float32))
        snapped[:, self.condition_columns_] = np.asarray(factual_encoded, dtype=np.float32)[:, self.condition_columns_]
        return self.encoder_.decode(snapped)


class LatentBaseline(Baseline):
    """A baseline that searches the latent space of a :class:`TabularVAE` (C-CHVAE, REVISE).

    ``fit`` trains the VAE ``vae_`` (:func:`train_vae`) unless ``vae`` is given: one :func:`train_vae` already trained
    for the same training rows, schema, immutable features and seed (the study trains one per dataset and seed and
    both methods search it).
    """

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        vae_params: Optional[dict] = None,
        random_state: Any = None,
        vae: Optional[TabularVAE] = None,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable)
        self.vae_params, self.random_state, self.vae = vae_params, random_state, vae

    def fit(self, X_train: pd.DataFrame, predict_proba: Any) -> "LatentBaseline":
        """See :meth:`~.base.Baseline.fit`; also trains (or takes) the VAE ``vae_``."""
        super().fit(X_train, predict_proba)
        self.vae_ = self.vae if self.vae is not None else train_vae(self, self.vae_params, self.random_state)
        return self


def train_vae(fitted: Baseline, vae_params: Optional[dict] = None, random_state: Any = None) -> TabularVAE:
    """The VAE a :class:`LatentBaseline` searches: trained on the fitted baseline's de-duplicated rows, conditioned on
    its immutable features, with ``vae_params`` (keyword arguments of :class:`TabularVAE`) and ``random_state``."""
    params = dict(vae_params or {})
    params.setdefault("random_state", random_state)
    return TabularVAE(fitted.schema_, immutable=fitted.immutable_, **params).fit(fitted.X_train_)


def batches(data: torch.Tensor, size: int, steps: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` mini-batches of ``data``: shuffled passes, one after another, the last one cut short."""
    done = 0
    while done < steps:
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), size):
            if done == steps:
                return
            yield data[order[start : start + size]]
            done += 1
