"""``lapace bench --fit``: the L-GMVAE fit's time per bundled dataset against a plain torch training loop of the same
network on the same data and number of optimiser steps (the floor), measured in the same process, with the quality
figures that must not move."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from .. import datasets
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..lgmvae import validation_split
from ..training import Adam, fit_batch_size, torch_threads


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lapace bench --fit",
        description=(
            "Per bundled dataset: Lapace.fit's wall time (labelling, encoding, training with validation and early "
            "stopping, centroid settling, pair support) beside the floor, a plain torch loop (forward, backward, "
            "the same Adam) over the same network, rows and number of optimiser steps, timed in the same process (so "
            "other load on the machine slows both); 'fit cpu' is the fit's CPU seconds, about its wall time on an idle "
            "machine with one torch thread. Quality figures: centroid validity, distinct decoded centroids "
            "per class, best validation loss, and the share of valid paths of explain(strategy='last'/'first')."
        ),
    )
    parser.add_argument("--datasets", nargs="+", default=datasets.names(), choices=datasets.names(), help="bundled datasets (default: all)")
    parser.add_argument("--n-queries", type=int, default=200, help="queries for the last/first validity (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    return parser.parse_args(argv)


def floor_loop(explainer: Lapace, x: np.ndarray, labels: np.ndarray, epochs: int, seed: int) -> float:
    """Seconds of a plain training loop of a fresh network of ``explainer``'s sizes: ``epochs`` passes over the fit's
    training rows in the fit's batches (so the same number of optimiser steps), nothing else."""
    n_train = len(validation_split(len(x), seed)[1])
    batch = fit_batch_size(explainer.batch_size, len(x))
    with torch_threads(explainer.n_threads):
        torch.manual_seed(seed)
        model = explainer._build_model(explainer.encoder_, explainer.n_classes_)
        xt = torch.as_tensor(x[:n_train], dtype=torch.float32)
        yt = torch.as_tensor(labels[:n_train], dtype=torch.long)
        optimiser = Adam(model.parameters(), explainer.learning_rate)
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        for _ in range(epochs):
            for idx in torch.randperm(n_train, generator=generator).split(batch):
                loss, _ = model.loss(xt[idx], yt[idx], explainer.continuous_weight, explainer.kl_weight, generator)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return time.perf_counter() - start


def measure(name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """Fit and floor seconds and the quality figures on one bundled dataset."""
    ds = datasets.load(name)
    X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=args.seed)
    model = make_classifier(ds.schema, "rf", random_state=args.seed).fit(X_train, y_train)
    explainer = Lapace(schema=ds.schema, random_state=args.seed, epochs=args.epochs, verbose=False)
    start, cpu = time.perf_counter(), time.process_time()
    explainer.fit(X_train, predict_proba=model.predict_proba, classes=model.classes_)
    fit_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    x = explainer.encoder_.encode(explainer.schema_.validate(X_train))
    floor_s = floor_loop(explainer, x, model.predict_proba(X_train).argmax(1), len(explainer.history_), args.seed)
    queries = X_test.iloc[: args.n_queries]
    target = (model.predict_proba(queries).argmax(1) + 1) % explainer.n_classes_  # each query to the next class
    out = dict(dataset=name, rows=len(X_train), epochs=len(explainer.history_), fit_s=fit_s, cpu_s=cpu_s, floor_s=floor_s,
               validity=explainer.centroid_validity_, distinct=explainer.distinct_centroids_,
               val_loss=float(np.min(explainer.history_)))
    for strategy in ("last", "first"):
        frame = explainer.explain(queries, target_class=target, strategy=strategy).to_frame()
        out[strategy] = float(frame["valid"].mean())
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    print("torch %s, %d torch thread(s) while fitting, %d CPUs, load average %.2f"
          % (torch.__version__, Lapace().n_threads or torch.get_num_threads(), os.cpu_count() or 0, os.getloadavg()[0]))
    print("%-14s %6s %6s %8s %8s %8s %9s %9s %9s %-16s %6s %6s"
          % ("dataset", "rows", "epochs", "fit s", "fit cpu", "floor s", "fit/floor", "validity", "val loss", "distinct/class", "last", "first"))
    for name in args.datasets:
        r = measure(name, args)
        distinct = " ".join(str(v) for v in r["distinct"].values())
        print("%-14s %6d %6d %8.2f %8.2f %8.2f %8.2fx %8.0f%% %9.3f %-16s %5.0f%% %5.0f%%"
              % (r["dataset"], r["rows"], r["epochs"], r["fit_s"], r["cpu_s"], r["floor_s"], r["fit_s"] / r["floor_s"], 100 * r["validity"],
                 r["val_loss"], distinct, 100 * r["last"], 100 * r["first"]), flush=True)
    return 0
