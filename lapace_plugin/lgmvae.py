"""Label-conditional Gaussian mixture VAE (L-GMVAE) and its training loop.

Generative model ``p(x, c, z | y) = p(c | y) p(z | c) p(x | z)`` with ``m`` learned Gaussian components per
class; inference ``q(c | x, y) q(z | x, c, y)`` with ``c`` marginalised exactly over the class's components.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .encoding import Layout
from .heads import TypedHeads
from .training import Adam


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: List[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class LGMVAE(nn.Module):
    """The L-GMVAE network.

    The decoder has one likelihood per column type (:class:`~lapace_plugin.encoding.Layout`): a sigmoid with squared
    error for numeric columns (weighted by ``continuous_weight``); for a point-mass feature a *hurdle*: a gate
    (Bernoulli, cross-entropy, also weighted by ``continuous_weight``: with weight 1 the gate of adult's capital gain
    was not reconstructed at all) and a value whose error counts only off the mass; a cumulative-link head for ordinal
    features (``P(level >= j) = sigmoid(a - c_j)`` with increasing thresholds ``c_j``, a binary cross-entropy per
    threshold, so an error costs more the more steps it is off; the decoded value is the expected level); a softmax
    with cross-entropy per one-hot group. The paper's decoder is the special case of numeric and one-hot columns only.

    Parameters
    ----------
    layout
        The encoded row's columns and their heads (``TabularEncoder.layout``).
    n_classes, components_per_class
        ``L`` and ``m``; the model has ``K = L * m`` components, component ``k`` belongs to class ``k // m``.
    latent_dim, hidden
        Latent size and hidden layer widths of the encoder and decoder MLPs.
    """

    def __init__(
        self,
        layout: Layout,
        n_classes: int,
        components_per_class: int,
        latent_dim: int = 16,
        hidden: Sequence[int] = (128, 128),
    ) -> None:
        super().__init__()
        self.layout = layout
        self.input_dim = input_dim = layout.width
        self.heads = TypedHeads(layout)
        n_out = self.heads.n_out
        self.n_classes = n_classes
        self.m = components_per_class
        self.n_components = n_classes * components_per_class
        self.latent_dim = latent_dim
        h = list(hidden)
        self.encoder = _mlp([input_dim + n_classes] + h)
        self.component_head = nn.Linear(h[-1], self.n_components)
        self.z_hidden = nn.Linear(h[-1], h[-1])
        self.z_component = nn.Embedding(self.n_components, h[-1])
        self.z_head = nn.Linear(h[-1], 2 * latent_dim)
        self.decoder = nn.Sequential(_mlp([latent_dim] + h[::-1]), nn.Linear(h[0], n_out))
        self.prior_mean = nn.Parameter(torch.randn(self.n_components, latent_dim))
        self.prior_logvar = nn.Parameter(torch.zeros(self.n_components, latent_dim))

    def class_components(self, y: torch.Tensor) -> torch.Tensor:
        """Component indices owned by each label, shape ``(B, m)``."""
        return y.unsqueeze(1) * self.m + torch.arange(self.m, device=y.device)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inference network for encoded rows ``x (B, D)`` and labels ``y (B,)``.

        Returns ``components (B, m)``, ``log q(c | x, y) (B, m)`` restricted to the label's components, and the
        mean and log-variance of ``q(z | x, c, y)``, each ``(B, m, latent_dim)``.
        """
        h = self.encoder(torch.cat([x, F.one_hot(y, self.n_classes).to(x.dtype)], dim=1))
        comps = self.class_components(y)
        log_qc = torch.log_softmax(self.component_head(h).gather(1, comps), dim=1)
        t = torch.relu(self.z_hidden(h).unsqueeze(1) + self.z_component(comps))
        mean, logvar = self.z_head(t).chunk(2, dim=-1)
        return comps, log_qc, mean, logvar.clamp(-10.0, 6.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output ``(..., n_out)``: value logits, gate logits, ordinal blocks, then one block per group."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded rows ``(..., D)`` in the encoded layout: numbers in [0, 1] (point-mass features: the value off the
        mass; ordinal features: the expected scaled level), gate probabilities, a softmax per one-hot group."""
        return self.to_probabilities(self.decode_logits(z))

    def to_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Decoder logits -> decoded rows ``(..., D)`` (:meth:`lapace_plugin.heads.TypedHeads.probabilities`)."""
        return self.heads.probabilities(logits)

    def reconstruction_loss(self, logits: torch.Tensor, x: torch.Tensor, continuous_weight: float) -> torch.Tensor:
        """Negative log-likelihood per row, one term per column type (see the class documentation), computed per type
        group (:meth:`lapace_plugin.heads.TypedHeads.nll`)."""
        return self.heads.nll(logits, x, continuous_weight)

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        continuous_weight: float,
        kl_weight: float,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Negative ELBO averaged over the batch, and the responsibilities ``q(c | x, y) (B, m)``."""
        per_row, qc = self.row_loss(x, y, continuous_weight, kl_weight, generator)
        return per_row.mean(), qc

    def row_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        continuous_weight: float,
        kl_weight: float,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Negative ELBO per row ``(B,)`` (at the encoder's mean without ``generator``) and ``q(c | x, y) (B, m)``."""
        comps, log_qc, mean, logvar = self.encode(x, y)
        qc = log_qc.exp()
        if generator is None:
            z = mean
        else:
            noise = torch.randn(mean.shape, generator=generator).to(mean.device)
            z = mean + noise * torch.exp(0.5 * logvar)
        recon = self.reconstruction_loss(self.decode_logits(z), x.unsqueeze(1), continuous_weight)
        p_mean, p_logvar = self.prior_mean[comps], self.prior_logvar[comps]
        kl_z = 0.5 * (
            p_logvar - logvar + (logvar.exp() + (mean - p_mean) ** 2) / p_logvar.exp() - 1.0
        ).sum(-1)
        kl_c = (qc * (log_qc + math.log(self.m))).sum(1)
        per_row = (qc * (recon + kl_weight * kl_z)).sum(1) + kl_weight * kl_c
        return per_row, qc

    def latent_mean(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``z_x``: mean of ``q(z | x, c*, y)`` at the most responsible component ``c*``; returns ``(z (B, L), c* (B,))``."""
        comps, log_qc, mean, _ = self.encode(x, y)
        best = log_qc.argmax(1)
        rows = torch.arange(len(x), device=x.device)
        return mean[rows, best], comps[rows, best]


def count_parameters(layout: Layout, n_classes: int, components_per_class: int, latent_dim: int, hidden: Sequence[int]) -> int:
    """The number of parameters :class:`LGMVAE` would have (to refuse a huge network before allocating it)."""
    h = [int(v) for v in hidden]
    k = n_classes * components_per_class
    n_out = (len(layout.scalar) + len(layout.masked) + len(layout.gates) + sum(n for _, n in layout.ordinal)
             + sum(b - a for a, b in layout.groups))

    def linear(a: int, b: int) -> int:
        return a * b + b

    encoder = sum(linear(a, b) for a, b in zip([layout.width + n_classes] + h[:-1], h))
    decoder = sum(linear(a, b) for a, b in zip([latent_dim] + h[::-1][:-1], h[::-1])) + linear(h[0], n_out)
    heads = linear(h[-1], k) + linear(h[-1], h[-1]) + k * h[-1] + linear(h[-1], 2 * latent_dim)
    return encoder + decoder + heads + 2 * k * latent_dim


def train_lgmvae(
    model: LGMVAE,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    continuous_weight: float,
    kl_weight: float,
    seed: int,
    device: torch.device,
    validation_fraction: float = 0.1,
    patience: int = 15,
    reseed_every: int = 5,
    progress: Optional[Callable[[int, float], None]] = None,
) -> List[float]:
    """Train with Adam, early stopping on a validation split and re-seeding of dead components.

    A component whose responsibility mass falls below a tenth of its fair share (of its class's training
    rows, over ``reseed_every`` epochs) gets a perturbed copy of the busiest component of its class.
    Returns the validation loss per epoch; the best epoch's weights are restored.
    """
    rng = np.random.RandomState(seed)
    generator = torch.Generator().manual_seed(seed)
    n = len(x)
    val_idx, train_idx = validation_split(n, rng, validation_fraction)
    n_val = len(val_idx)
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)  # the data stays one tensor; batches are index slices
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    eval_idx = torch.as_tensor(val_idx if n_val else train_idx, device=device)
    x_eval, y_eval = xt[eval_idx], yt[eval_idx]
    optimiser = Adam(model.parameters(), learning_rate)
    class_counts = np.bincount(y[train_idx], minlength=model.n_classes).astype(float)
    best_loss, best_state, stale, history = float("inf"), None, 0, []
    mass = torch.zeros(model.n_components, device=device)
    for epoch in range(epochs):
        model.train()
        order = torch.as_tensor(train_idx[rng.permutation(len(train_idx))], device=device)
        for idx in order.split(batch_size):
            xb, yb = xt[idx], yt[idx]
            loss, qc = model.loss(xb, yb, continuous_weight, kl_weight, generator)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            mass.index_add_(0, model.class_components(yb).reshape(-1), qc.detach().reshape(-1))
        if (epoch + 1) % reseed_every == 0:
            _reseed_dead_components(model, mass.cpu().numpy(), class_counts * reseed_every, generator)
            mass.zero_()
        model.eval()
        with torch.no_grad():
            val_loss = float(model.loss(x_eval, y_eval, continuous_weight, kl_weight)[0])
        history.append(val_loss)
        if progress is not None:
            progress(epoch, val_loss)
        if val_loss < best_loss - 1e-4:
            best_loss, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def validation_split(n: int, rng: Any, fraction: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
    """``(validation rows, training rows)`` of ``n`` rows, drawn with ``rng`` (a seed or a ``RandomState``); no
    validation rows under 50 rows. ``train_lgmvae`` holds out the first; the consistency check learns from them."""
    perm = (rng if isinstance(rng, np.random.RandomState) else np.random.RandomState(rng)).permutation(n)
    n_val = int(round(fraction * n)) if n >= 50 else 0
    return perm[:n_val], perm[n_val:]


def _reseed_dead_components(
    model: LGMVAE, mass: np.ndarray, rows_per_class: np.ndarray, generator: torch.Generator
) -> None:
    m = model.m
    with torch.no_grad():
        for label in range(model.n_classes):
            owned = np.arange(label * m, (label + 1) * m)
            share = mass[owned]
            fair = rows_per_class[label] / m
            busiest = owned[int(share.argmax())]
            for k in owned[share < 0.1 * fair]:
                k = int(k)
                noise = torch.randn(model.latent_dim, generator=generator).to(model.prior_mean.device)
                scale = torch.exp(0.5 * model.prior_logvar[busiest])
                model.prior_mean[k] = model.prior_mean[busiest] + 0.5 * scale * noise
                model.prior_logvar[k] = model.prior_logvar[busiest]
                model.component_head.bias[k] = model.component_head.bias[busiest]
                model.z_component.weight[k] = model.z_component.weight[busiest]
