"""Training helpers of ``Lapace.fit``: a bounded number of torch threads and the progress display."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterator, Optional

import torch


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
