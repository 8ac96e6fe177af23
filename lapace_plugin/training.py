"""Training helpers of ``Lapace.fit``: the step budget, the optimiser (Adam), a bounded number of torch threads and the
progress display."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import torch

STEP_BUDGET = 1000
"""Optimiser steps of a default fit (``epochs=None``), whatever the data's size (2,000 before). Measured with
``lapace bench --fit`` on every bundled dataset (seed 0): centroid validity stays 100% with 5 distinct decoded
centroids per class and ``last``/``first`` paths 100% valid, as with 2,000 steps; the best validation loss is 0-10%
higher (adult 7.19 -> 7.50, credit 7.97 -> 8.73, wine unchanged: early stopping ends it first)."""
MAX_EPOCHS = 400


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs of about :data:`STEP_BUDGET` optimiser steps for ``n_train`` rows in batches of ``batch_size`` (at least
    one epoch, at most :data:`MAX_EPOCHS`)."""
    steps_per_epoch = math.ceil(n_train / batch_size)
    return int(min(MAX_EPOCHS, max(1, math.ceil(STEP_BUDGET / steps_per_epoch))))


def fit_batch_size(batch_size: int, n_train: int) -> int:
    """The batch of a fit on ``n_train`` rows: ``batch_size``, or a tenth of the rows (at least 32) when smaller."""
    return int(min(batch_size, max(32, n_train // 10)))


def fit_schedule(n_train: int, batch_size: int, epochs: Optional[int]) -> Tuple[int, int]:
    """``(batch, epochs)`` of a fit on ``n_train`` rows: :func:`fit_batch_size`, and ``epochs`` or, for ``None``,
    :func:`default_epochs`."""
    batch = fit_batch_size(batch_size, n_train)
    return batch, epochs if epochs is not None else default_epochs(n_train, batch)


class Adam:
    """Adam with torch's default settings (``torch.optim.Adam(params, lr)``: the same update, bit for bit on torch 2), kept here because the
    first ``torch.optim`` optimiser of a process imports ``torch._dynamo`` in torch 2 (measured: 2-8 s of a fit).
    All parameters are updated by a few multi-tensor operations where torch has them (a loop on torch 1.7)."""

    def __init__(self, parameters: Iterable[torch.nn.Parameter], lr: float, betas: Tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params: List[torch.Tensor] = list(parameters)
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def keep(self, params: List[torch.Tensor], rows: torch.Tensor) -> None:
        """Go on with ``params``, the given ``rows`` (first axis) of the current ones, and those rows of their state."""
        self.params = list(params)
        self.exp_avg = [a[rows] for a in self.exp_avg]
        self.exp_avg_sq = [s[rows] for s in self.exp_avg_sq]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        (b1, b2), t = self.betas, self.t
        step_size, root = self.lr / (1.0 - b1 ** t), math.sqrt(1.0 - b2 ** t)
        live = [(p, a, s) for p, a, s in zip(self.params, self.exp_avg, self.exp_avg_sq) if p.grad is not None]
        if not live:
            return
        params, m, v = zip(*live)
        grads = [p.grad for p in params]
        if FOREACH:
            torch._foreach_lerp_(m, grads, 1.0 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1.0 - b2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, root)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, m, denom, value=-step_size)
            return
        for p, g, a, s in zip(params, grads, m, v):
            a.lerp_(g, 1.0 - b1)
            s.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            p.addcdiv_(a, s.sqrt().div_(root).add_(self.eps), value=-step_size)


FOREACH = all(hasattr(torch, "_foreach_" + op) for op in ("lerp_", "mul_", "add_", "addcmul_", "sqrt", "div_", "addcdiv_"))


@contextlib.contextmanager
def torch_threads(n: Optional[int]) -> Iterator[None]:
    """Run a block with ``n`` torch threads, then restore the previous number."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class progress:
    """Training progress when ``enabled``: a tqdm bar over epochs (with the validation loss) on a terminal or in a
    notebook, else one summary line on stderr at the end (no wall of bar updates in logs)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None
        self.epochs, self.loss, self.start = 0, float("nan"), time.time()

    def __enter__(self) -> Optional[Callable[[int, float], None]]:
        if not self.enabled:
            return None
        from tqdm.auto import tqdm

        if sys.stderr.isatty() or "notebook" in tqdm.__module__:  # a terminal, or a notebook widget
            self.bar = tqdm(total=self.total, desc="training L-GMVAE", unit="epoch")

        def update(epoch: int, loss: float) -> None:
            self.epochs, self.loss = epoch + 1, loss
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(val_loss="%.3f" % loss)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and exc[0] is None:
            print("training L-GMVAE: %d epochs in %.1f s, validation loss %.3f" % (self.epochs, time.time() - self.start, self.loss),
                  file=sys.stderr)
