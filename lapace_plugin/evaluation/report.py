"""Figures and the markdown report of ``lapace study`` (see :mod:`lapace_plugin.evaluation.study`)."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional

import numpy as np
import pandas as pd

from .metrics import METRICS

_FAMILY_COLOURS = {"lapace": "#1f77b4", "dice": "#ff7f0e", "nnce": "#2ca02c", "drce": "#d62728", "robxce": "#9467bd"}


def _colour(method: str) -> str:
    return _FAMILY_COLOURS.get(method.split("-")[0], "#7f7f7f")


def plot_dataset(results: pd.DataFrame, path: str) -> None:
    """One PNG for one dataset: a bar chart per metric, one bar per method.

    Parameters
    ----------
    results
        The dataset's rows of ``results.csv``.
    path
        Output PNG path (its folder is created).
    """
    # an Agg canvas on a bare Figure: no pyplot state, so the caller's backend (e.g. a notebook's) is untouched
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    names = list(METRICS)
    cols = 4
    rows = int(math.ceil(len(names) / float(cols)))
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols)
    methods = results["method"].tolist()
    x = np.arange(len(methods))
    colours = [_colour(m) for m in methods]
    for ax, metric in zip(axes.ravel(), names):
        label, direction = METRICS[metric].label, METRICS[metric].better
        values = pd.to_numeric(results[metric], errors="coerce").to_numpy(dtype=float)
        heights = np.where(np.isnan(values), 0.0, values)
        ax.bar(x, heights, color=colours)
        for i, v in enumerate(values):
            if np.isnan(v):
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        if metric == "runtime_per_query" and np.nanmax(np.append(values, 0)) > 0:
            ax.set_yscale("log")
        ax.set_title(label + ("  (higher better)" if direction > 0 else "  (lower better)"), fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    dataset = results["dataset"].iloc[0] if len(results) else ""
    bad = ["%s: %s" % (m, s) for m, s in zip(methods, results["status"]) if s != "ok"]
    fig.suptitle("%s: methods compared metric by metric%s" % (dataset, ("\n" + "; ".join(bad))[:300] if bad else ""), fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        if value != 0 and abs(value) < 0.5 * 10**-digits:
            return "%.1e" % value
        return ("%." + str(digits) + "f") % value
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: Optional[Dict[str, int]] = None) -> str:
    """A GitHub markdown table of ``frame`` with floats rounded (3 decimals unless ``digits`` says)."""
    digits = digits or {}
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c], digits.get(c, 3)).replace("|", "/") for c in frame.columns) + " |")
    return "\n".join(lines)


def claims(results: pd.DataFrame, info: pd.DataFrame) -> pd.DataFrame:
    """The paper's claims checked per dataset (``yes`` / ``no`` / ``n/a`` with the numbers)."""
    out: List[Dict[str, str]] = []
    for dataset, part in results.groupby("dataset", sort=False):
        by = part.set_index("method")
        usable = part[part["status"].str.startswith("ok") | part["status"].str.startswith("timeout")]
        row = {"dataset": dataset}
        inf = info[info["dataset"] == dataset]
        cv = (
            float(inf["centroid_validity"].iloc[0])
            if "centroid_validity" in inf and len(inf) and pd.notna(inf["centroid_validity"].iloc[0])
            else np.nan
        )
        cv0 = float(inf["centroid_validity_initial"].iloc[0]) if "centroid_validity_initial" in inf and len(inf) else np.nan
        row["centroid validity 100%"] = (
            "n/a" if np.isnan(cv) else "%s (%.0f%%; before moving: %.0f%%)" % (_yes(cv == 1.0), 100 * cv, 100 * cv0)
        )
        last = by.loc["lapace-last"] if "lapace-last" in by.index else None
        if last is not None and last["status"] == "ok":
            row["lapace-last validity 100%"] = "%s (%.3f)" % (_yes(last["validity"] == 1.0), last["validity"])
            row["lapace-last input robustness 0"] = "%s (%s)" % (
                _yes(last["input_robustness"] == 0.0),
                _fmt(last["input_robustness"], 4),
            )
            for metric, sign, title in (
                ("model_robustness", +1, "lapace-last model robustness best"),
                ("lof_median", -1, "lapace-last LOF median best"),
            ):
                values = pd.to_numeric(usable.set_index("method")[metric], errors="coerce").dropna()
                if metric not in last or pd.isna(last[metric]) or values.empty:
                    row[title] = "n/a"
                    continue
                best = values.max() if sign > 0 else values.min()
                winner = values.idxmax() if sign > 0 else values.idxmin()
                row[title] = "%s (%.3f; best %s %.3f)" % (_yes(last[metric] == best), last[metric], winner, best)
        else:
            for title in (
                "lapace-last validity 100%",
                "lapace-last input robustness 0",
                "lapace-last model robustness best",
                "lapace-last LOF median best",
            ):
                row[title] = "n/a"
        for method in ("lapace-first", "lapace-first-corrected", "lapace-first-revert"):
            for metric, label in (("proximity_l1", "proximity"), ("lof_median", "LOF median")):
                row["%s %s vs NNCE" % (method, label)] = _versus(by, method, "nnce", metric)
        out.append(row)
    return pd.DataFrame(out)


def _versus(by: pd.DataFrame, method: str, other: str, metric: str) -> str:
    """``"a vs b (ratio a/b)"`` for two methods' values of ``metric``, or ``n/a``."""
    if method not in by.index or other not in by.index:
        return "n/a"
    a, b = pd.to_numeric(pd.Series([by.loc[method, metric], by.loc[other, metric]]), errors="coerce")
    if pd.isna(a) or pd.isna(b):
        return "n/a"
    return "%.3f vs %.3f (ratio %.2f)" % (a, b, a / b if b else np.inf)


def _yes(flag: Any) -> str:
    return "yes" if bool(flag) else "**no**"


def write_markdown(results: pd.DataFrame, info: pd.DataFrame, config: Any, wall: float, path: str) -> None:
    """Write ``results.md``: settings, per-dataset facts, one metric table per dataset and the claims check."""
    m = config.components_per_class or config.k
    lines = [
        "# LAPACE comparative study",
        "",
        "Command: `%s`" % config.command,
        "",
        "Wall time: %.0f s. Classifier: %s (n_jobs=1), %d retrained models, seed %d; k = %d counterfactuals per query "
        "for LAPACE, DRCE and DiCE, 1 for NNCE and RobXCE; LAPACE m = %d components per class, epochs %s; RobXCE %d "
        "perturbations, search among the %s nearest valid training rows; time budget %g s per method per dataset."
        % (
            wall,
            config.classifier,
            config.retrained,
            config.seed,
            config.k,
            m,
            config.epochs or "auto",
            config.robx_perturbations,
            config.robx_max_search or "all",
            config.time_budget,
        ),
        "",
        "NNCE, DRCE and RobXCE are this package's implementations of the published methods; DiCE runs through dice-ml "
        "with its default settings. Input robustness keeps each query's original target for its perturbed copy. "
        "fit_time of the three LAPACE rows is the one shared L-GMVAE fit.",
        "",
        "## Datasets",
        "",
        markdown_table(info, {"model_fit_time": 1, "retrain_time": 1, "lapace_fit_time": 1}),
        "",
        "## The paper's claims",
        "",
        markdown_table(claims(results, info)),
        "",
    ]
    shown = ["method", "status", "n_queries", "n_counterfactuals"] + list(METRICS) + ["fit_time"]
    for dataset, part in results.groupby("dataset", sort=False):
        lines += ["## %s" % dataset, "", markdown_table(part[shown], {"runtime_per_query": 4, "fit_time": 2}), ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
