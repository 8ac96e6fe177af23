"""``lapace study --global``: LAPACE's global actions against AReS- and GLOBE-CE-style summaries.

For every dataset and seed the harness splits the data (:func:`lapace_plugin.evaluation.models.split`), trains the
classifier on (at most ``max_train_rows`` of) the training split, fits one :class:`~lapace_plugin.Lapace`, and takes
the test rows the classifier refuses (up to ``n_people``). Each method chooses up to ``n_actions`` actions for them
under the schema's constraints (immutable and monotone features) and every action is judged the same way
(:func:`lapace_plugin.actions.action_outcomes`); each person takes their cheapest working action. The tables give,
per number of actions ``1..n_actions`` (the first ones selected), the coverage and the mean ``(1/d)``-L1 cost over
the covered, as the mean over seeds with a 95% t-interval (:mod:`lapace_plugin.evaluation.intervals`).

The verdict per dataset (``verdicts.csv``) holds when LAPACE covers at least as many as the best baseline with the
same number of actions at no higher mean cost; the figure ``front-<dataset>.png`` shows coverage against cost for
every method and number of actions, so where the verdict fails it shows where LAPACE stands on the front. The support
columns compare the share of changed rows holding a pair of states fewer than ``min_pair_count`` training rows hold
with the same share among the people's own, real rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .. import datasets
from ..actions import Action, action_outcomes, apply_action
from ..constraints import Constraints
from ..explainer import Lapace
from ..files import check_output_folder, listing
from ..global_recourse import GlobalExplanation
from ..rules import assigned_to
from ..support import states
from .global_baselines import GLOBAL_METHODS, Judge, ares_actions, globe_actions
from .intervals import t_interval
from .models import make_classifier, split
from .report import markdown_table


@dataclass
class GlobalStudyConfig:
    """What ``lapace study --global`` runs (its options have the same names)."""

    datasets: Sequence[str] = ("adult", "compas", "german", "credit")
    seeds: Sequence[int] = (0, 1, 2)
    n_actions: int = 5
    n_people: int = 400
    max_train_rows: int = 4000
    epochs: Optional[int] = 40
    out: str = "lapace-global-study"


def judged(actions: List[Action], judge: Judge) -> GlobalExplanation:
    """The actions judged on every one of ``judge``'s people, as a :class:`GlobalExplanation`."""
    outcomes = action_outcomes(actions, judge.people, judge.target, **judge.kw)
    return GlobalExplanation(actions, judge.people, judge.target, outcomes, pd.DataFrame(), {})


def support_shares(result: GlobalExplanation, judge: Judge) -> Dict[str, float]:
    """Share of the covered people's changed rows, and of all the people's own rows, holding a rare pair of states."""
    support, count = judge.kw["support"], judge.kw["min_pair_count"]
    own = support.rare(states(judge.schema, judge.people, support.masses), count).mean() if len(judge.people) else np.nan
    rows = [apply_action(a, judge.people[result.assignment.to_numpy() == i], judge.schema) for i, a in enumerate(result.actions)]
    rows = [r for r in rows if len(r)]
    changed = support.rare(states(judge.schema, pd.concat(rows), support.masses), count).mean() if rows else np.nan
    return {"support_violations_actions": float(changed), "support_violations_real": float(own)}


def run_cell(dataset: str, seed: int, config: GlobalStudyConfig) -> pd.DataFrame:
    """One dataset and seed: per method and number of actions, coverage, mean cost and features changed."""
    ds = datasets.load(dataset)
    X_train, X_test, y_train, _ = split(ds, random_state=seed)
    X_train, y_train = X_train.iloc[: config.max_train_rows], y_train.iloc[: config.max_train_rows]
    model = make_classifier(ds.schema, "rf", random_state=seed).fit(X_train, y_train)
    favourable = list(model.classes_).index(ds.favourable)
    start = time.perf_counter()
    explainer = Lapace(schema=ds.schema, random_state=seed, epochs=config.epochs, verbose=False)
    explainer.fit(X_train, model.predict_proba, classes=model.classes_)
    fit_time = time.perf_counter() - start
    refused = X_test[~assigned_to(model.predict_proba(X_test), favourable)].iloc[: config.n_people]
    target = np.full(len(refused), favourable)
    constraints = Constraints.from_schema(ds.schema)
    judge = Judge(ds.schema, model.predict_proba, refused, target, constraints, explainer.support_, max(1, explainer.min_pair_count))
    rows, results = [], {}
    for method in GLOBAL_METHODS:
        start = time.perf_counter()
        if method == "lapace":
            actions = explainer.explain_global(refused, target_class=favourable, n_actions=config.n_actions,
                                               constraints=constraints, random_state=seed).actions
        elif method == "ares":
            actions = ares_actions(judge, X_train, assigned_to(model.predict_proba(X_train), favourable), config.n_actions, constraints)
        else:
            actions = globe_actions(judge, X_train, model.predict_proba, config.n_actions, constraints)
        seconds = time.perf_counter() - start
        result = results[method] = judged(actions, judge)
        extra = dict(support_shares(result, judge), seconds=seconds, fit_time=fit_time, n_people=len(refused),
                     actions=" | ".join(a.describe() for a in actions), mean_changed=result.mean_changed)
        for _, point in result.curve.iterrows():
            rows.append(dict(dataset=dataset, seed=seed, method=method, n_actions=int(point["n_actions"]),
                             coverage=point["coverage"], mean_cost=point["mean_cost"], **extra))
    frame = pd.DataFrame(rows)
    frame["mean_cost_shared"] = [shared_cost(results, r.method, r.n_actions) for r in frame.itertuples()]
    return frame


def shared_cost(results: Dict[str, GlobalExplanation], method: str, k: int) -> float:
    """``method``'s mean cost with its first ``k`` actions over the people every method covers with its first ``k``:
    the cost comparison on the same people (a method covering more, harder cases is not penalised for them)."""
    best = {m: r.action_costs[:k].min(0) if len(r.actions) else np.full(len(r.people), np.inf) for m, r in results.items()}
    shared = np.logical_and.reduce([np.isfinite(b) for b in best.values()])
    return float(best[method][shared].mean()) if shared.any() else float("nan")


def summarise_global(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds and 95% t-interval of coverage and cost per dataset, method and number of actions (a method
    with fewer actions than asked carries its last point forward: more actions were not needed)."""
    rows = []
    for (dataset, method, k), part in results.groupby(["dataset", "method", "n_actions"], sort=False):
        row: Dict[str, Any] = {"dataset": dataset, "method": method, "n_actions": k, "n_seeds": len(part)}
        for m in ("coverage", "mean_cost", "mean_cost_shared", "support_violations_actions", "support_violations_real", "seconds"):
            ci = t_interval(part[m])
            row.update({m: ci.mean, m + "_low": ci.low, m + "_high": ci.high})
        rows.append(row)
    return pd.DataFrame(rows)


def fill_curves(results: pd.DataFrame, n_actions: int) -> pd.DataFrame:
    """Every method and seed with a point for each number of actions ``1..n_actions`` (the last one carried)."""
    out = []
    for _, part in results.groupby(["dataset", "seed", "method"], sort=False):
        part = part.set_index("n_actions").reindex(range(1, n_actions + 1)).ffill().reset_index()
        out.append(part.dropna(subset=["dataset"]))
    return pd.concat(out, ignore_index=True) if out else results


def verdicts(summary: pd.DataFrame, n_actions: int) -> pd.DataFrame:
    """Per dataset, at ``n_actions``: LAPACE's coverage and cost against the baseline with the highest coverage."""
    rows = []
    for dataset, part in summary[summary["n_actions"] == n_actions].groupby("dataset", sort=False):
        mine = part[part["method"] == "lapace"]
        others = part[part["method"] != "lapace"].sort_values(["coverage", "mean_cost"], ascending=[False, True])
        if mine.empty or others.empty:
            continue
        a, b = mine.iloc[0], others.iloc[0]
        more = a["coverage"] >= b["coverage"] - 1e-9
        holds = more and a["mean_cost"] <= b["mean_cost"] + 1e-9
        shared = more and a["mean_cost_shared"] <= b["mean_cost_shared"] + 1e-9
        rows.append({"dataset": dataset, "n_actions": n_actions, "lapace_coverage": a["coverage"], "lapace_cost": a["mean_cost"],
                     "lapace_cost_shared": a["mean_cost_shared"], "best_baseline": b["method"], "baseline_coverage": b["coverage"],
                     "baseline_cost": b["mean_cost"], "baseline_cost_shared": b["mean_cost_shared"],
                     "verdict": "holds" if holds else "fails (see the front)",
                     "verdict_same_people": "holds" if shared else "fails"})
    return pd.DataFrame(rows)


def plot_front(summary: pd.DataFrame, dataset: str, path: str) -> None:
    """Coverage against mean cost for every method, one point per number of actions, with 95% intervals."""
    from ..apps.plots import figure

    fig, ax = figure(6, 4.5)
    for method, part in summary[summary["dataset"] == dataset].groupby("method", sort=False):
        part = part.sort_values("n_actions")
        ax.errorbar(part["mean_cost"], part["coverage"],
                    xerr=[part["mean_cost"] - part["mean_cost_low"], part["mean_cost_high"] - part["mean_cost"]],
                    yerr=[part["coverage"] - part["coverage_low"], part["coverage_high"] - part["coverage"]],
                    marker="o", capsize=2, label=method)
        for _, r in part.iterrows():
            ax.annotate(str(int(r["n_actions"])), (r["mean_cost"], r["coverage"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("mean cost of the covered ((1/d)-L1)")
    ax.set_ylabel("coverage of the refused")
    ax.set_title("%s: coverage against cost\n(numbers: actions; higher and further left is better)" % dataset)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _owned(folder: str) -> Optional[set]:
    """Every file of a folder holding a global study's ``config.json`` (the study writes only its own names there);
    ``None`` for any other folder."""
    try:
        with open(os.path.join(folder, "config.json")) as fh:
            payload = json.load(fh)
    except (OSError, ValueError):
        return None
    return set(listing(folder)) if isinstance(payload, dict) and set(payload) == set(asdict(GlobalStudyConfig())) else None


def run_global_study(config: GlobalStudyConfig, progress: bool = True) -> Dict[str, pd.DataFrame]:
    """Run every dataset and seed; write ``results.csv``, ``summary.csv``, ``verdicts.csv``, ``results.md`` and
    ``front-<dataset>.png`` to ``config.out``; return the three tables."""
    check_output_folder(config.out, option="out", owned=_owned, what="lapace study --global")
    os.makedirs(config.out, exist_ok=True)
    with open(os.path.join(config.out, "config.json"), "w") as fh:
        json.dump(asdict(config), fh, indent=2, default=list)
    cells = []
    for dataset in config.datasets:
        for seed in config.seeds:
            start = time.perf_counter()
            cells.append(run_cell(dataset, int(seed), config))
            if progress:
                print("%s seed %d: %.0f s" % (dataset, seed, time.perf_counter() - start), file=sys.stderr)
    results = fill_curves(pd.concat(cells, ignore_index=True), config.n_actions)
    summary = summarise_global(results)
    verdict = verdicts(summary, config.n_actions)
    results.to_csv(os.path.join(config.out, "results.csv"), index=False)
    summary.to_csv(os.path.join(config.out, "summary.csv"), index=False)
    verdict.to_csv(os.path.join(config.out, "verdicts.csv"), index=False)
    for dataset in config.datasets:
        plot_front(summary, dataset, os.path.join(config.out, "front-%s.png" % dataset))
    with open(os.path.join(config.out, "results.md"), "w") as fh:
        fh.write(markdown(summary, verdict, config))
    return {"results": results, "summary": summary, "verdicts": verdict}


def markdown(summary: pd.DataFrame, verdict: pd.DataFrame, config: GlobalStudyConfig) -> str:
    """The report: coverage and cost with intervals per number of actions, and the verdicts."""
    def cell(r: Any, m: str) -> str:
        return "%.3f [%.3f, %.3f]" % (r[m], r[m + "_low"], r[m + "_high"])

    lines = ["# Global recourse: LAPACE against AReS and GLOBE-CE", "",
             "Seeds %s; up to %d refused test rows per seed; schema constraints; mean over seeds [95%% t-interval]."
             % (list(config.seeds), config.n_people), "",
             "| dataset | method | actions | coverage | mean cost | mean cost on the people all methods cover | support violations (actions / real rows) |",
             "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append("| %s | %s | %d | %s | %s | %s | %.3f / %.3f |" % (r["dataset"], r["method"], r["n_actions"], cell(r, "coverage"),
                     cell(r, "mean_cost"), cell(r, "mean_cost_shared"), r["support_violations_actions"], r["support_violations_real"]))
    lines += ["", markdown_table(verdict.round(3)) if len(verdict) else "(no verdict)", ""]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    d = GlobalStudyConfig()
    p = argparse.ArgumentParser(prog="lapace study --global", description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--global", dest="global_", action="store_true", help="the global study (this command)")
    p.add_argument("--datasets", nargs="+", default=list(d.datasets), choices=datasets.names(), metavar="NAME")
    p.add_argument("--seeds", nargs="+", type=int, default=list(d.seeds), metavar="SEED")
    p.add_argument("--n-actions", type=int, default=d.n_actions, help="most actions per method (default: %(default)s)")
    p.add_argument("--n-people", type=int, default=d.n_people, help="refused test rows per seed (default: %(default)s)")
    p.add_argument("--max-train-rows", type=int, default=d.max_train_rows, help="training rows used (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="LAPACE training epochs (default: %(default)s)")
    p.add_argument("--out", default=d.out, help="output folder (default: %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    config = GlobalStudyConfig(datasets=args.datasets, seeds=args.seeds, n_actions=args.n_actions, n_people=args.n_people,
                               max_train_rows=args.max_train_rows, epochs=args.epochs, out=args.out)
    tables = run_global_study(config)
    print(tables["verdicts"].round(3).to_string(index=False))
    print("wrote %s" % config.out)
    return 0


__all__ = ["GlobalStudyConfig", "fill_curves", "main", "run_cell", "run_global_study", "summarise_global", "verdicts"]
