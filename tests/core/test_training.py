"""The L-GMVAE's vectorised typed loss against a per-feature computation, and the training loop's budget, early
stopping and determinism (tiny networks on tiny data: each test runs in well under a second)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from lapace_plugin.encoding import Layout
from lapace_plugin.lgmvae import LGMVAE, train_lgmvae
from lapace_plugin.training import STEP_BUDGET, Adam, default_epochs

# every head: a scalar, a point-mass value with its gate, ordinal features of 4 and 3 levels, one-hot groups of 3 and 2
LAYOUT = Layout(width=10, scalar=(0,), masked=((1, 4),), gates=(4,), ordinal=((2, 4), (3, 3)), groups=((5, 8), (8, 10)))
PAPER = Layout(width=6, scalar=(0, 1), masked=(), gates=(), ordinal=(), groups=((2, 5), (5, 6)))


def rows(layout: Layout, n: int, seed: int = 0) -> np.ndarray:
    """Valid encoded rows of ``layout``: numbers in [0, 1], levels on their grid, 0/1 gates, one-hot groups."""
    rng = np.random.RandomState(seed)
    x = np.zeros((n, layout.width), dtype=np.float32)
    for j in layout.scalar + tuple(v for v, _ in layout.masked):
        x[:, j] = rng.rand(n)
    for g in layout.gates:
        x[:, g] = rng.rand(n) < 0.5
    for j, k in layout.ordinal:
        x[:, j] = rng.randint(k, size=n) / (k - 1.0)
    for a, b in layout.groups:
        x[np.arange(n), a + rng.randint(b - a, size=n)] = 1.0
    return x


def per_feature_nll(logits: torch.Tensor, x: torch.Tensor, layout: Layout, w: float) -> torch.Tensor:
    """The reconstruction loss one feature at a time, straight from :class:`LGMVAE`'s documentation."""
    values = list(layout.scalar) + [v for v, _ in layout.masked]
    gate_of = dict(layout.masked)
    loss = torch.zeros(logits.shape[:-1])
    for i, j in enumerate(values):
        error = (torch.sigmoid(logits[..., i]) - x[..., j]) ** 2
        loss = loss + w * error * (x[..., gate_of[j]] if j in gate_of else 1.0)
    pos = len(values)
    for g in layout.gates:
        loss = loss + w * F.binary_cross_entropy_with_logits(logits[..., pos], x[..., g].expand_as(logits[..., pos]), reduction="none")
        pos += 1
    for j, k in layout.ordinal:
        a, c = logits[..., pos], logits[..., pos + 1]
        level = torch.round(x[..., j] * (k - 1))
        for step in range(1, k):
            if step > 1:
                c = c + F.softplus(logits[..., pos + step])
            target = (level >= step).to(x.dtype).expand_as(a)
            loss = loss + F.binary_cross_entropy_with_logits(a - c, target, reduction="none")
        pos += k
    for a, b in layout.groups:
        loss = loss - (torch.log_softmax(logits[..., pos : pos + b - a], dim=-1) * x[..., a:b]).sum(-1)
        pos += b - a
    return loss


def model(layout: Layout, seed: int = 0) -> LGMVAE:
    torch.manual_seed(seed)
    return LGMVAE(layout, n_classes=2, components_per_class=2, latent_dim=3, hidden=(16,))


def test_the_vectorised_loss_equals_the_per_feature_computation_on_every_head():
    for layout in (LAYOUT, PAPER):
        net = model(layout)
        x = torch.as_tensor(rows(layout, 7)).unsqueeze(1)  # (B, 1, D) against (B, m, n_out), as in training
        logits = torch.randn(7, 2, net.heads.n_out, generator=torch.Generator().manual_seed(1)) * 3
        got = net.reconstruction_loss(logits, x, continuous_weight=10.0)
        want = per_feature_nll(logits, x, layout, 10.0)
        assert got.shape == (7, 2)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5), (got - want).abs().max()


def test_decoded_rows_follow_the_heads_in_the_encoded_layout():
    net = model(LAYOUT)
    logits = torch.randn(5, net.heads.n_out, generator=torch.Generator().manual_seed(2)) * 3
    decoded = net.to_probabilities(logits)
    assert torch.allclose(decoded[:, 0], torch.sigmoid(logits[:, 0]))  # scalar
    assert torch.allclose(decoded[:, 4], torch.sigmoid(logits[:, 2]))  # the gate
    a, c, c2 = logits[:, 3], logits[:, 4 + 0], None  # ordinal of 4 levels: outputs 3..6
    c = logits[:, 4]
    c2 = c + F.softplus(logits[:, 5])
    c3 = c2 + F.softplus(logits[:, 6])
    expected = (torch.sigmoid(a - c) + torch.sigmoid(a - c2) + torch.sigmoid(a - c3)) / 3
    assert torch.allclose(decoded[:, 2], expected, atol=1e-6)
    assert torch.allclose(decoded[:, 5:8], torch.softmax(logits[:, 10:13], dim=-1), atol=1e-6)
    assert torch.allclose(decoded[:, 8:10], torch.softmax(logits[:, 13:15], dim=-1), atol=1e-6)


def fit(seed: int, epochs: int, patience: int = 15, n: int = 120):
    x = rows(LAYOUT, n, seed=3)
    y = (x[:, 0] > 0.5).astype(int)
    net = model(LAYOUT, seed=seed)
    torch.manual_seed(seed)
    history = train_lgmvae(net, x, y, epochs=epochs, batch_size=32, learning_rate=1e-3, continuous_weight=10.0,
                           kl_weight=1.0, seed=seed, device=torch.device("cpu"), patience=patience)
    return net, history


def test_a_fit_with_a_fixed_random_state_is_deterministic():
    (a, ha), (b, hb) = fit(seed=4, epochs=3), fit(seed=4, epochs=3)
    assert ha == hb
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(p, q, rtol=0.0, atol=1e-6)  # bit for bit on torch 2; torch 1.7 rounds its moments apart, name
    _, other = fit(seed=5, epochs=3)
    assert other != ha


def test_early_stopping_stops_once_the_validation_loss_stalls():
    _, history = fit(seed=0, epochs=400, patience=2, n=60)
    best = int(np.argmin(history))
    assert len(history) < 400
    assert len(history) - 1 - best >= 2  # it stopped `patience` epochs after its best one
    assert all(h >= history[best] - 1e-4 for h in history[best + 1 :])


def test_the_default_epochs_give_about_the_step_budget():
    for n_train, batch in ((39073, 256), (800, 80), (4000, 256), (150, 32)):
        epochs = default_epochs(n_train, batch)
        steps = epochs * int(np.ceil(n_train / batch))
        assert STEP_BUDGET <= steps < STEP_BUDGET + int(np.ceil(n_train / batch)) or epochs == 400, (n_train, epochs)


def test_adam_makes_torch_optim_adams_update():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    start = a.weight.detach().clone()
    ours, theirs = Adam(a.parameters(), 0.01), torch.optim.Adam(b.parameters(), lr=0.01)
    for step in range(5):
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
        for net, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            (net(x) ** 2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=0.0, atol=1e-6)  # bit for bit on torch 2; torch 1.7 rounds its moments apart
    assert not torch.allclose(a.weight, start)  # it moved
