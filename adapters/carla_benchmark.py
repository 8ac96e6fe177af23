"""LAPACE beside CARLA's baselines in CARLA's own harness (``Benchmark.run_benchmark()``).

Run in the CARLA environment (``bash .ci/carla_env.sh DIR``)::

    DIR/bin/python -m lapace_plugin.adapters.carla_benchmark --dataset adult --n-factuals 50

It builds offline CARLA data from a bundled dataset (:meth:`lapace_plugin.adapters.carla_data.TabularData.from_dataset`,
categoricals binarised as CARLA's own catalogue does), trains a torch MLP on it, picks factuals from
the test split that the model predicts unfavourable, and runs ``carla.evaluation.Benchmark(model,
method, factuals).run_benchmark()`` for LAPACE (``first`` and ``last``), Wachter (MSE loss),
GrowingSpheres, CCHVAE and Face. The printed table holds CARLA's metrics averaged over the factuals
(distances over the factuals with a counterfactual, as CARLA computes them) plus ``Setup_s``, the time
a method needs before its first counterfactual (LAPACE's L-GMVAE fit, shared by ``first`` and
``last``; CCHVAE's VAE training), which CARLA's ``Average_Time`` leaves out.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from lapace_plugin.rules import assigned_to

METHODS = ("lapace-first", "lapace-first-revert", "lapace-last", "wachter", "growing-spheres", "cchvae", "face")
COLUMNS = [
    "Distance_1",
    "Distance_2",
    "Distance_3",
    "Distance_4",
    "Constraint_Violation",
    "Redundancy",
    "y-Nearest-Neighbours",
    "Success_Rate",
    "Average_Time",
]


def select_factuals(model: Any, n_factuals: int, random_state: int = 0) -> pd.DataFrame:
    """``n_factuals`` test rows the model predicts unfavourable (class 0), with a fresh RangeIndex.

    CARLA 0.0.5's constraint-violation metric crashes for GrowingSpheres, Revise and Face unless the
    factuals carry a RangeIndex, hence ``reset_index(drop=True)``.
    """
    test = model.data.df_test
    proba = np.asarray(model.predict_proba(test[model.feature_input_order]))
    negatives = test[assigned_to(proba, 0)]
    if len(negatives) < n_factuals:
        raise ValueError("only %d test rows are predicted unfavourable; asked for %d" % (len(negatives), n_factuals))
    return negatives.sample(n=n_factuals, random_state=random_state).reset_index(drop=True)


def make_methods(
    model: Any,
    names: Sequence[str] = METHODS,
    lapace_params: Optional[Dict[str, Any]] = None,
    cchvae_epochs: int = 5,
    face_fraction: float = 0.1,
) -> List[Tuple[str, Callable[[], Any]]]:
    """(display name, constructor) pairs for the requested methods, configured as documented in the notes."""
    from carla.recourse_methods import CCHVAE, Face, GrowingSpheres, Wachter

    from lapace_plugin.adapters.carla import LapaceCarla

    lapace_params = dict(lapace_params or {})
    shared: Dict[str, Any] = {}

    def lapace(strategy: str, **extra: Any) -> Any:
        # "first" and "last" select different points on the same latent paths: fit the L-GMVAE once
        method = LapaceCarla(model, dict(lapace_params, strategy=strategy, **extra), explainer=shared.get("fit"))
        shared["fit"] = method.lapace_
        return method

    dim = len(model.feature_input_order)
    name = getattr(model.data, "name", "custom")
    table: Dict[str, Tuple[str, Callable[[], Any]]] = {
        "lapace-first": ("LAPACE (first)", lambda: lapace("first")),
        "lapace-first-revert": ("LAPACE (first, revert)", lambda: lapace("first", revert=True)),
        "lapace-last": ("LAPACE (last)", lambda: lapace("last")),
        # 0.0.5's default BCE loss crashes (IndexError on a float index tensor); MSE towards class 1 works
        "wachter": ("Wachter (MSE)", lambda: Wachter(model, {"loss_type": "MSE", "y_target": [1]})),
        "growing-spheres": ("GrowingSpheres", lambda: GrowingSpheres(model)),
        # CARLA's published set-up (layers 512-256-8, 5 epochs) with batch 256 instead of 32 for time
        "cchvae": (
            "CCHVAE",
            lambda: CCHVAE(
                model,
                {
                    "data_name": name,
                    "vae_params": {
                        "layers": [dim, 512, 256, 8],
                        "train": True,
                        "epochs": cchvae_epochs,
                        "batch_size": 256,
                        "lambda_reg": 1e-6,
                        "lr": 1e-3,
                    },
                },
            ),
        ),
        "face": ("Face (knn)", lambda: Face(model, {"mode": "knn", "fraction": face_fraction})),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError("unknown method(s) %s; choose from %s" % (unknown, list(METHODS)))
    return [table[n] for n in names]


def benchmark_methods(
    model: Any,
    factuals: pd.DataFrame,
    methods: Sequence[Tuple[str, Callable[[], Any]]],
    seed: int = 0,
    progress: Optional[Callable[[str], None]] = None,
) -> Tuple[pd.DataFrame, Dict[str, pd.DataFrame]]:
    """Run ``Benchmark(model, method, factuals).run_benchmark()`` for each method.

    Returns the summary (one row per method: CARLA's columns averaged, plus ``Setup_s`` and
    ``n_factuals``) and the raw per-factual tables keyed by display name.
    """
    import torch
    from carla.evaluation import Benchmark

    rows = []
    raw: Dict[str, pd.DataFrame] = {}
    for display, build in methods:
        np.random.seed(seed)
        torch.manual_seed(seed)
        start = time.perf_counter()
        method = build()
        setup = time.perf_counter() - start
        result = Benchmark(model, method, factuals).run_benchmark()
        raw[display] = result
        summary = result.reindex(columns=COLUMNS).astype(float).mean()
        # LAPACE reports its L-GMVAE fit time (shared by first and last), not the ~0 s of reusing it
        summary["Setup_s"] = float(getattr(method, "fit_time_", setup))
        summary["n_factuals"] = len(factuals)
        rows.append(summary.rename(display))
        if progress is not None:
            progress("%s done (setup %.1f s, %.1f s total)" % (display, setup, time.perf_counter() - start))
    return pd.DataFrame(rows), raw


def run_benchmark(
    dataset: str = "adult",
    n_factuals: int = 50,
    methods: Sequence[str] = METHODS,
    max_rows: Optional[int] = None,
    seed: int = 0,
    lapace_params: Optional[Dict[str, Any]] = None,
    cchvae_epochs: int = 5,
    face_fraction: float = 0.1,
    mlp_epochs: int = 20,
    progress: Optional[Callable[[str], None]] = None,
) -> Tuple[pd.DataFrame, Dict[str, Any]]:
    """Build data and model for a bundled dataset and benchmark the methods; returns (table, info)."""
    import torch

    from lapace_plugin import datasets
    from lapace_plugin.adapters.carla_data import TabularData, train_torch_mlp

    say = progress or (lambda msg: None)
    np.random.seed(seed)
    torch.manual_seed(seed)
    data = TabularData.from_dataset(datasets.load(dataset), random_state=seed, max_rows=max_rows)
    model = train_torch_mlp(data, epochs=mlp_epochs, random_state=seed)
    say(
        "%s: %d rows (%d train), %d encoded features, torch MLP test accuracy %.3f"
        % (dataset, len(data.df), len(data.df_train), len(model.feature_input_order), model.test_accuracy)
    )
    factuals = select_factuals(model, n_factuals, random_state=seed)
    built = make_methods(model, methods, lapace_params, cchvae_epochs=cchvae_epochs, face_fraction=face_fraction)
    table, raw = benchmark_methods(model, factuals, built, seed=seed, progress=say)
    info = {
        "dataset": dataset,
        "rows": len(data.df),
        "train_rows": len(data.df_train),
        "encoded_features": len(model.feature_input_order),
        "model_accuracy": model.test_accuracy,
        "n_factuals": n_factuals,
        "immutables": list(data.immutables),
        "per_factual": raw,
    }
    return table, info


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table (pandas 1.1's ``to_markdown`` needs ``tabulate``, which CARLA lacks)."""
    cols = ["method"] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, row in table.iterrows():
        cells = [str(name)]
        for value in row:
            if pd.isna(value):
                cells.append("-")
            else:
                cells.append("%.*f" % (digits, value) if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lapace_plugin.adapters.carla_benchmark",
        description=(
            "Print CARLA's Benchmark.run_benchmark() table for LAPACE (first, last) beside Wachter (MSE), "
            "GrowingSpheres, CCHVAE and Face on a bundled dataset. Needs the CARLA environment "
            "(Python 3.7, carla-recourse 0.0.5): bash .ci/carla_env.sh DIR."
        ),
    )
    p.add_argument("--dataset", default="adult", help="bundled dataset with a binary target (default: adult)")
    p.add_argument("--n-factuals", type=int, default=50, help="test rows predicted unfavourable (default: 50)")
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated subset of %s (default: all)" % ",".join(METHODS),
    )
    p.add_argument("--max-rows", type=int, default=None, help="stratified subsample of the dataset (default: all rows)")
    p.add_argument("--seed", type=int, default=0, help="seed for split, model, factuals and methods (default: 0)")
    p.add_argument("--lapace-epochs", type=int, default=None, help="L-GMVAE epochs (default: LAPACE's own)")
    p.add_argument("--components-per-class", type=int, default=5, help="LAPACE components per class (default: 5)")
    p.add_argument("--cchvae-epochs", type=int, default=5, help="CCHVAE VAE epochs (default: 5, CARLA's)")
    p.add_argument("--face-fraction", type=float, default=0.1, help="Face graph fraction of the data (default: 0.1)")
    p.add_argument("--mlp-epochs", type=int, default=20, help="epochs of the torch MLP being explained (default: 20)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default: 1; several threads on a small shared machine are much slower)",
    )
    p.add_argument("--markdown", action="store_true", help="print the table as GitHub markdown")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    p.add_argument("--verbose", action="store_true", help="keep CARLA's INFO logging and progress lines")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m lapace_plugin.adapters.carla_benchmark`` (and ``lapace carla-benchmark``)."""
    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch  # after argparse, so --help works anywhere

    import lapace_plugin.adapters.carla  # noqa: F401  (outside the CARLA environment: a clear ImportError saying how to build it)

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    lapace_params: Dict[str, Any] = {"components_per_class": args.components_per_class, "random_state": args.seed}
    if args.lapace_epochs is not None:
        lapace_params["epochs"] = args.lapace_epochs
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    table, info = run_benchmark(
        dataset=args.dataset,
        n_factuals=args.n_factuals,
        methods=methods,
        max_rows=args.max_rows,
        seed=args.seed,
        lapace_params=lapace_params,
        cchvae_epochs=args.cchvae_epochs,
        face_fraction=args.face_fraction,
        mlp_epochs=args.mlp_epochs,
        progress=progress,
    )
    print(
        "CARLA Benchmark.run_benchmark() on %s: %d rows (%d train), %d encoded features, immutable %s; "
        "torch MLP test accuracy %.3f; %d factuals predicted unfavourable; means over factuals "
        "(distances over successful ones); Setup_s = time before the first counterfactual."
        % (
            info["dataset"],
            info["rows"],
            info["train_rows"],
            info["encoded_features"],
            ", ".join(info["immutables"]),
            info["model_accuracy"],
            info["n_factuals"],
        )
    )
    shown = table.drop(columns=["n_factuals"])
    if args.markdown:
        print(to_markdown(shown))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(shown.round(4).to_string())
    print("total %.1f s" % (time.perf_counter() - start))
    if args.csv:
        table.to_csv(args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
