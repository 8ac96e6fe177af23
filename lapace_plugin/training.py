"""Training helpers of ``Lapace.fit``: the step budget, the optimiser, a bounded number of torch threads and the
progress display."""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import torch

STEP_BUDGET = 1000
"""Optimiser steps of a default fit (``epochs=None``), whatever the data's size. Measured with ``lapace bench --fit``
on every bundled dataset: 1,000 steps keep centroid validity at 100% and the same distinct decoded centroids per class
as 2,000 did, at a validation loss within a few percent; early stopping (patience in epochs) ends small data's fits
sooner."""
MAX_EPOCHS = 400


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs of about :data:`STEP_BUDGET` optimiser steps for ``n_train`` rows in batches of ``batch_size`` (at least
    one epoch, at most :data:`MAX_EPOCHS`)."""
    steps_per_epoch = math.ceil(n_train / batch_size)
    return int(min(MAX_EPOCHS, max(1, math.ceil(STEP_BUDGET / steps_per_epoch))))


def fit_batch_size(batch_size: int, n_train: int) -> int:
    """The batch of a fit on ``n_train`` rows: ``batch_size``, or a tenth of the rows (at least 32) when smaller."""
    return int(min(batch_size, max(32, n_train // 10)))


def validation_rows(n: int, fraction: float) -> int:
    """Rows held out for early stopping (none below 50 rows: the training rows judge the fit then)."""
    return int(round(fraction * n)) if n >= 50 else 0


def adam(parameters: Iterable[torch.nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
    """Adam updating all parameters in one fused (or multi-tensor) kernel where this torch has one (the same update
    as the loop over parameters, up to float rounding); torch 1.7's Adam has neither option and loops."""
    options = inspect.signature(torch.optim.Adam.__init__).parameters
    params = list(parameters)
    for flag in ("fused", "foreach"):
        if flag in options:
            try:
                return torch.optim.Adam(params, lr=learning_rate, **{flag: True})
            except (RuntimeError, TypeError, ValueError):  # e.g. no fused kernel for this device or dtype
                continue
    return torch.optim.Adam(params, lr=learning_rate)


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
