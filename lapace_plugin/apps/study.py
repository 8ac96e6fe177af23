"""``lapace study``: the command line of the comparative study (:mod:`lapace_plugin.evaluation.study`).

It only builds a :class:`~lapace_plugin.evaluation.study.StudyConfig` from its options (the same names) and runs
:func:`~lapace_plugin.evaluation.study.run_study`; ``--config`` reruns a saved study with the options given replacing
its values.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Optional, Sequence

from .. import datasets
from ..evaluation import artefacts
from ..evaluation.methods import METHODS, SLOW_METHODS
from ..evaluation.models import CLASSIFIERS
from ..evaluation.study import StudyConfig, run_study


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's layout; show defaults, except unset ones and those the help text already states."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "(default" in text or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action.default, (list, tuple)):
            return text + " (default: %s)" % " ".join(str(v) for v in action.default)
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The ``lapace study`` argument parser (defaults: :class:`StudyConfig`'s)."""
    d = StudyConfig()
    p = argparse.ArgumentParser(
        prog="lapace study",
        description=(
            "Comparative study of LAPACE (this package's lapace-first, -neighbour, -sparse, -fast, -revert, lapace-robust (one robust plan), -robust-options and -robust-typical (one robust plan kept typical of the target class), "
            "lapace-last and lapace-constrained, and the paper's lapace-first-paper and lapace-last-paper) against NNCE, DRCE, RobXCE, C-CHVAE "
            "and REVISE (this package's implementations), ElliCE (the ellice package, with --classifier logistic), DiCE's random, genetic and kdtree methods (real dice-ml) and RoCELib's "
            "NNCE, KDTreeNNCE and DiverseRobustCE (real rocelib 0.2.3), on the bundled datasets, the paper's metrics "
            "and the paper's generative evaluation, repeated over seeds with 95% intervals; per dataset, the front of methods "
            "no other beats on L1 proximity, model robustness and median LOF at once."
        ),
        epilog=(
            "Example: lapace study --datasets adult compas --seeds 0 1 2 --out lapace-study\n"
            "DiCE methods need dice-ml (pip install \"lapace-plugin[dice]\"), RoCELib methods rocelib "
            "(pip install --no-deps rocelib==0.2.3), ElliCE ellice (pip install \"lapace-plugin[ellice]\") and the logistic "
            "classifier (--classifier logistic; elsewhere it is 'not applicable'); without them they appear as 'not installed'.\n\n"
            "Files written in --out:\n" + artefacts.describe()
        ),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--config", metavar="JSON", help="rerun a study from its config.json (options given here override it)")
    p.add_argument("--datasets", nargs="+", default=list(d.datasets), choices=datasets.names(), metavar="NAME",
                   help="bundled datasets (%s); 'credit' is the Taiwan credit-default stand-in for HELOC" % ", ".join(datasets.names()))
    p.add_argument("--methods", nargs="+", default=list(d.methods), choices=METHODS, metavar="METHOD",
                   help="methods to compare: %s (default: all but dice-genetic, 12-17 s per query on compas, and "
                   "rocelib-nnce, which returns rocelib-kdtree-nnce's rows, slowly)" % ", ".join(METHODS))
    p.add_argument("--classifier", choices=CLASSIFIERS, default=d.classifier, help="model family explained and retrained")
    p.add_argument("--n-queries", type=int, default=d.n_queries, help="queries per dataset and seed (fewer when the test split has fewer)")
    p.add_argument("--retrained", type=int, default=d.retrained, help="retrained models for model-change robustness")
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), metavar="SEED",
                   help="one run per seed: split, classifier, retrained models, LAPACE fit and perturbations; tables "
                   "give the mean and a 95%% t-interval over seeds")
    p.add_argument("--time-budget", type=float, default=d.time_budget,
                   help="seconds per method per dataset and seed for the counterfactuals (the perturbed queries get "
                   "the same budget again); checked between queries / batches")
    p.add_argument("--out", default=d.out, help="output directory")
    p.add_argument("--max-train-rows", type=int, default=d.max_train_rows, help="subsample the training split to this many rows")
    p.add_argument("--k", type=int, default=d.k,
                   help="counterfactuals per query for the diverse methods (LAPACE, DRCE, DiCE, rocelib-drce); the "
                   "nearest-neighbour methods and RobXCE return 1")
    p.add_argument("--components-per-class", type=int, default=d.components_per_class,
                   help="LAPACE components per class m (default: k, one counterfactual per target component as in the paper)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="LAPACE training epochs (default: chosen by Lapace)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="queries per explain call for the batched methods")
    p.add_argument("--robx-perturbations", type=int, default=d.robx_perturbations,
                   help="RobXCE perturbations per stability estimate (the published setting is 1000)")
    p.add_argument("--robx-max-search", type=int, default=d.robx_max_search,
                   help="RobXCE: nearest valid training rows searched for stable anchors per query (0 = all)")
    p.add_argument("--slow-queries", type=int, default=d.slow_queries,
                   help="the slow methods (%s) explain only this many of the queries (0 = all); their n_queries "
                   "column shows it" % ", ".join(SLOW_METHODS))
    p.add_argument("--no-generative", action="store_true", help="skip the train-on-synthetic / test-on-real evaluation")
    p.add_argument("--torch-threads", type=int, default=d.torch_threads,
                   help="torch CPU threads for LAPACE in every process (0 = torch's default)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="run the cells as Dask tasks on a local cluster of this many worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run the cells as Dask tasks on an existing cluster (tcp://host:8786)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p


def config_from_args(args: argparse.Namespace, command: str, parser: Optional[argparse.ArgumentParser] = None) -> StudyConfig:
    """The :class:`StudyConfig` of parsed ``lapace study`` arguments; with ``--config``, that file's configuration
    with the options given on the command line replacing its values."""
    names = {f.name for f in dataclasses.fields(StudyConfig)}
    raw = vars(args)
    values = {k: v for k, v in raw.items() if k in names}
    values.update(progress=not args.no_progress, generative=not args.no_generative, command=command)
    if not args.config:
        return StudyConfig(**values)
    defaults = vars((parser or build_parser()).parse_args([]))
    given = {k for k, v in raw.items() if v != defaults.get(k)}
    overrides = {k: v for k, v in values.items() if k in given or "no_" + k in given}
    overrides["command"] = command
    return StudyConfig.from_json(args.config, **overrides)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``lapace study``; returns 0."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args, "lapace study " + " ".join(argv), parser)
    except ValueError as exc:
        raise SystemExit("lapace study: %s" % exc)
    start = time.perf_counter()
    outputs = run_study(config)
    shown = ["dataset", "method", "status", "validity", "proximity_l1", "input_robustness", "model_robustness",
             "lof_median", "runtime_per_query"]
    print(outputs.summary[shown].round(3).to_string(index=False))
    print(outputs.claims[["dataset", "claim", "verdict"]].to_string(index=False))
    print("wrote %s in %.0f s (see lapace study --help for the files)" % (config.out, time.perf_counter() - start))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
