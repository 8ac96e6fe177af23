"""Figures, ``results.md`` and the self-contained ``report.html`` of ``lapace study``."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from .front import front_table
from .metrics import METRICS

_FAMILY_COLOURS = {"lapace": "#1f77b4", "dice": "#ff7f0e", "nnce": "#2ca02c", "drce": "#d62728", "robxce": "#9467bd",
                   "rocelib": "#8c564b", "cchvae": "#e377c2", "revise": "#17becf", "ellice": "#bcbd22"}
TABLE_METRICS = ("validity", "proximity_l1", "sparsity", "features_changed", "lof_median", "ynn", "support_violations",
                 "consistency_violations", "diversity", "option_diversity", "input_robustness", "model_robustness",
                 "model_robustness_all", "constraint_violations",
                 "coverage", "runtime_per_query")
COUNTS = ("n_queries", "n_covered", "n_both_runs")
VERDICT_COLOURS = {"holds": "#d8f0d8", "fails": "#f6d5d5", "inconclusive": "#fbefc9", "not run": "#eeeeee"}


def _colour(method: str) -> str:
    return _FAMILY_COLOURS.get(method.split("-")[0], "#7f7f7f")


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def figure_png(summary: pd.DataFrame, title: str = "") -> bytes:
    """PNG bytes of one dataset's bar charts: one panel per metric, one bar per method with its 95% interval.

    Parameters
    ----------
    summary
        The dataset's rows of ``summary.csv``.
    title
        Figure title.
    """
    # an Agg canvas on a bare Figure: no pyplot state, so the caller's backend (e.g. a notebook's) is untouched
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [m for m in TABLE_METRICS if m in summary.columns]
    cols = 4
    rows = int(math.ceil(len(names) / float(cols)))
    fig = Figure(figsize=(4.2 * cols, 3.1 * rows))
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    methods = summary["method"].tolist()
    x = np.arange(len(methods))
    colours = [_colour(m) for m in methods]
    for ax, metric in zip(axes, names):
        values = pd.to_numeric(summary[metric], errors="coerce").to_numpy(dtype=float)
        low = pd.to_numeric(summary.get(metric + "_low"), errors="coerce").to_numpy(dtype=float)
        high = pd.to_numeric(summary.get(metric + "_high"), errors="coerce").to_numpy(dtype=float)
        heights = np.where(np.isnan(values), 0.0, values)
        errors = np.vstack([np.where(np.isnan(low), 0, heights - low), np.where(np.isnan(high), 0, high - heights)])
        ax.bar(x, heights, color=colours, yerr=np.clip(errors, 0, None), capsize=2, error_kw={"elinewidth": 0.8})
        for i, v in enumerate(values):
            if np.isnan(v):
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        if metric == "runtime_per_query" and np.nanmax(np.append(values, 0)) > 0:
            ax.set_yscale("log")
        label, direction = METRICS[metric].label, METRICS[metric].better
        ax.set_title(label + ("  (higher better)" if direction > 0 else "  (lower better)"), fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    height = fig.get_figheight()  # inches: room for the title above and the rotated method names below
    fig.subplots_adjust(left=0.04, right=0.99, top=1 - 0.7 / height, bottom=1.2 / height, hspace=1.0, wspace=0.25)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _on_front(flag: Any) -> bool:
    """``front.csv``'s ``non_dominated`` as a bool (empty, for a method not compared, is False)."""
    return bool(flag) if flag is not None and pd.notna(flag) else False


def front_png(summary: pd.DataFrame, title: str = "") -> bytes:
    """PNG bytes of one dataset's front: L1 proximity (x) against model robustness (y), one point per method with
    its 95% intervals as error bars; methods no other method dominates (:mod:`lapace_plugin.evaluation.front`, on
    L1, robustness and median LOF) are ringed in black and named in bold.

    Parameters
    ----------
    summary
        The dataset's rows of ``summary.csv``.
    title
        Figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    front = front_table(summary).set_index("method")["non_dominated"]
    fig = Figure(figsize=(7.5, 5.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for _, row in summary.iterrows():
        x, y = (pd.to_numeric(pd.Series([row.get(c)]), errors="coerce").iloc[0] for c in ("proximity_l1", "model_robustness"))
        if pd.isna(x) or pd.isna(y):
            continue
        errors = []
        for c, v in (("proximity_l1", x), ("model_robustness", y)):
            low, high = row.get(c + "_low"), row.get(c + "_high")
            errors.append([[0.0 if pd.isna(low) else max(v - low, 0.0)], [0.0 if pd.isna(high) else max(high - v, 0.0)]])
        on_front = _on_front(front.get(row["method"]))
        ax.errorbar([x], [y], xerr=errors[0], yerr=errors[1], fmt="o", color=_colour(row["method"]), ecolor=_colour(row["method"]),
                    elinewidth=0.8, capsize=2, markersize=7, markeredgecolor="black" if on_front else _colour(row["method"]),
                    markeredgewidth=1.6 if on_front else 0.5)
        ax.annotate(row["method"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7,
                    fontweight="bold" if on_front else "normal")
    ax.set_xlabel("%s  (lower better)" % METRICS["proximity_l1"].label, fontsize=9)
    ax.set_ylabel("%s  (higher better)" % METRICS["model_robustness"].label, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.89, bottom=0.11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def write_figures(summary: pd.DataFrame, out: str) -> Dict[str, bytes]:
    """``figures/<dataset>.png`` (the metrics) and ``figures/<dataset>-front.png`` (:func:`front_png`) for every
    dataset of ``summary``; returns the PNG bytes by file stem (``<dataset>``, ``<dataset>-front``)."""
    os.makedirs(os.path.join(out, "figures"), exist_ok=True)
    pngs = {}
    for dataset, part in summary.groupby("dataset", sort=False):
        seeds = int(part["n_seeds"].max())
        over = "mean over %d seed%s, 95%% t-interval" % (seeds, "" if seeds == 1 else "s")
        pngs[dataset] = figure_png(part, "%s: %s" % (dataset, over))
        pngs[dataset + "-front"] = front_png(part, "%s: proximity against model robustness\n%s; ringed: the front" % (dataset, over))
        for stem in (dataset, dataset + "-front"):
            with open(os.path.join(out, "figures", "%s.png" % stem), "wb") as fh:
                fh.write(pngs[stem])
    return pngs


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    """A number rounded for a table ('' for NaN, scientific below the last digit)."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        if value != 0 and abs(value) < 0.5 * 10**-digits:
            return "%.1e" % value
        return ("%." + str(digits) + "f") % value
    return str(value)


def with_interval(row: pd.Series, metric: str, n_seeds: int) -> str:
    """``mean [low, high]`` of one summary cell (digits by metric), with the seed count when some seeds lack it."""
    digits = 4 if metric == "runtime_per_query" else 3
    mean = row.get(metric)
    if mean is None or pd.isna(mean):
        return ""
    text = fmt(float(mean), digits)
    low, high = row.get(metric + "_low"), row.get(metric + "_high")
    if low is not None and pd.notna(low):
        text += " [%s, %s]" % (fmt(float(low), digits), fmt(float(high), digits))
    n = row.get(metric + "_seeds")
    if n is not None and pd.notna(n) and int(n) < n_seeds:
        text += " (%d seeds)" % int(n)
    return text


def dataset_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One dataset's summary as display strings: method, status, counts, then ``mean [low, high]`` per metric."""
    rows = []
    for _, row in summary.iterrows():
        n_seeds = int(row["n_seeds"])
        out = {"method": row["method"], "status": row["status"]}
        for c in COUNTS:
            out[c] = fmt(row.get(c), 1)
        for m in TABLE_METRICS:
            if m in summary.columns:
                out[METRICS[m].label] = with_interval(row, m, n_seeds)
        rows.append(out)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame, digits: Optional[Dict[str, int]] = None) -> str:
    """A GitHub markdown table of ``frame`` with floats rounded (3 decimals unless ``digits`` says)."""
    digits = digits or {}
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(fmt(row[c], digits.get(c, 3)).replace("|", "/") for c in frame.columns) + " |")
    return "\n".join(lines)


def claims_table(claims: pd.DataFrame) -> pd.DataFrame:
    """Claims as display strings: ``estimate [low, high]``."""
    rows = []
    for _, c in claims.iterrows():
        estimate = fmt(c["estimate"], 4)
        if pd.notna(c["low"]):
            estimate += " [%s, %s]" % (fmt(c["low"], 4), fmt(c["high"], 4))
        rows.append({"dataset": c["dataset"], "claim": c["claim"], "verdict": c["verdict"], "estimate [95% interval]": estimate,
                     "seeds": c["n_seeds"], "detail": c["detail"]})
    return pd.DataFrame(rows, columns=["dataset", "claim", "verdict", "estimate [95% interval]", "seeds", "detail"])


def front_display(summary: pd.DataFrame) -> pd.DataFrame:
    """One dataset's front as display strings: method, the three objectives with intervals, on the front or by what
    it is dominated."""
    front = front_table(summary).set_index("method")
    rows = []
    for _, row in summary.iterrows():
        n_seeds = int(row["n_seeds"])
        out = {"method": row["method"]}
        for m in ("proximity_l1", "model_robustness", "lof_median"):
            out[METRICS[m].label] = with_interval(row, m, n_seeds)
        flag = front.loc[row["method"], "non_dominated"]
        out["front"] = "" if pd.isna(flag) else ("non-dominated" if _on_front(flag) else "dominated")
        out["dominated by"] = front.loc[row["method"], "dominated_by"]
        rows.append(out)
    return pd.DataFrame(rows)


def mean_facts(facts: pd.DataFrame) -> pd.DataFrame:
    """``datasets.csv`` averaged over seeds (numeric columns), one row per dataset."""
    numeric = facts.drop(columns=["seed"]).groupby("dataset", sort=False).mean(numeric_only=True).reset_index()
    numeric.insert(1, "seeds", facts.groupby("dataset", sort=False)["seed"].count().to_numpy())
    return numeric


def mean_generative(generative: pd.DataFrame) -> pd.DataFrame:
    """``generative.csv`` summarised per dataset: TRTR, TSTR and the gap with intervals, beside the paper's gap."""
    from .intervals import t_interval

    rows = []
    for dataset, part in generative.groupby("dataset", sort=False):
        row = {"dataset": dataset, "status": "; ".join(pd.unique(part["status"].astype(str)))}
        for column in ("trtr_accuracy", "tstr_accuracy", "gap", "synthetic_assigned_to_class"):
            if column in part:
                ci = t_interval(part[column])
                row[column] = fmt(ci.mean) + ("" if np.isnan(ci.low) else " [%s, %s]" % (fmt(ci.low), fmt(ci.high)))
        paper = part["paper_gap"].dropna()
        row["paper gap"] = "" if paper.empty else "%s (%s)" % (fmt(float(paper.iloc[0])), part["paper_dataset"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


PROTOCOL = (
    "Each seed redraws the 80/20 split, refits the classifier, the retrained models and LAPACE, and redraws every "
    "perturbation. Ranges, scalers, LOF and neighbour models come from the training rows only. A cell is the mean "
    "over seeds with its 95% Student t-interval over the per-seed values (the seed is the unit of replication); a "
    "claim holds only when every seed meets an exact claim or the interval of the paired per-seed difference lies on "
    "the claimed side. n_queries: queries explained; n_covered: queries with a counterfactual (the counterfactual "
    "metrics average over their counterfactuals); n_both_runs: queries explained both before and after the "
    "perturbation (input robustness averages over these). Methods in the slow group explain only the first "
    "slow_queries queries."
)


def write_markdown(summary: pd.DataFrame, claims: pd.DataFrame, facts: pd.DataFrame, generative: pd.DataFrame,
                   config: Any, wall: float, path: str) -> None:
    """``results.md``: settings, protocol, per-dataset facts, generative evaluation, claims and one table per dataset."""
    lines = ["# LAPACE comparative study", "", "Command: `%s`" % config.command, "",
             "Wall time: %.0f s. Seeds: %s. Classifier: %s; %d retrained models; k = %d; slow methods capped at %s queries."
             % (wall, " ".join(str(s) for s in config.seeds), config.classifier, config.retrained, config.k,
                config.slow_queries or "no"), "", PROTOCOL, "", "## Datasets (means over seeds)", "",
             markdown_table(mean_facts(facts)), ""]
    if len(generative):
        lines += ["## Train on synthetic, test on real", "", markdown_table(mean_generative(generative)), ""]
    lines += ["## The paper's claims", "", markdown_table(claims_table(claims)), ""]
    for dataset, part in summary.groupby("dataset", sort=False):
        lines += ["## %s" % dataset, "", "Front (non-dominated on L1, model robustness and median LOF, means over seeds):", "",
                  markdown_table(front_display(part)), "", markdown_table(dataset_table(part)), ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1600px}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.82em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.text,th.text{text-align:left}
p.note{font-size:0.9em;color:#444;max-width:1100px}img{max-width:100%;border:1px solid #ddd}
div.scroll{overflow-x:auto}
"""


def html_table(frame: pd.DataFrame, table_id: str, text_columns: Sequence[str] = ("method", "status", "dataset", "claim", "detail", "front", "dominated by")) -> str:
    """An HTML table of display strings; ``verdict`` cells are coloured."""
    def cell(tag: str, column: str, value: Any) -> str:
        cls = ' class="text"' if column in text_columns else ""
        style = ""
        if column == "verdict":
            style = ' style="background:%s"' % VERDICT_COLOURS.get(str(value), "#fff")
        text = fmt(value) if isinstance(value, (float, np.floating)) else str(value)
        return "<%s%s%s>%s</%s>" % (tag, cls, style, html.escape(text), tag)

    head = "".join(cell("th", c, c) for c in frame.columns)
    body = "".join("<tr>%s</tr>" % "".join(cell("td", c, row[c]) for c in frame.columns) for _, row in frame.iterrows())
    return '<div class="scroll"><table id="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>' % (
        html.escape(table_id), head, body)


def write_html(summary: pd.DataFrame, claims: pd.DataFrame, facts: pd.DataFrame, generative: pd.DataFrame,
               config: Any, wall: float, pngs: Dict[str, bytes], path: str) -> None:
    """``report.html``: one self-contained page (inline CSS, figures as base64 PNG, no script, nothing fetched)."""
    parts: List[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>LAPACE comparative study</title>',
        "<style>%s</style></head><body>" % CSS,
        "<h1>LAPACE comparative study</h1>",
        "<p class=\"note\">Command: <code>%s</code><br>Wall time %.0f s; seeds %s; classifier %s; %d retrained models; "
        "k = %d.</p>" % (html.escape(config.command), wall, html.escape(" ".join(str(s) for s in config.seeds)),
                          html.escape(config.classifier), config.retrained, config.k),
        '<p class="note">%s</p>' % html.escape(PROTOCOL),
        "<h2>The paper's claims</h2>", html_table(claims_table(claims), "claims"),
        "<h2>Datasets (means over seeds)</h2>", html_table(mean_facts(facts).map(fmt), "datasets"),
    ]
    if len(generative):
        parts += ["<h2>Train on synthetic, test on real</h2>", html_table(mean_generative(generative), "generative")]
    for dataset, part in summary.groupby("dataset", sort=False):
        parts += ['<h2 id="h-%s">%s</h2>' % (html.escape(dataset), html.escape(dataset)),
                  '<p class="note">The front: methods that no other method beats on L1 proximity, model robustness and '
                  'median LOF at once (means over seeds; the claims above judge it with the intervals).</p>',
                  html_table(front_display(part), "front-%s" % dataset)]
        if dataset + "-front" in pngs:
            parts.append('<img id="front-figure-%s" alt="%s proximity against model robustness" src="data:image/png;base64,%s">'
                         % (html.escape(dataset), html.escape(dataset), base64.b64encode(pngs[dataset + "-front"]).decode("ascii")))
        parts.append(html_table(dataset_table(part), "results-%s" % dataset))
        if dataset in pngs:
            parts.append('<img alt="%s metrics by method" src="data:image/png;base64,%s">'
                         % (html.escape(dataset), base64.b64encode(pngs[dataset]).decode("ascii")))
    parts.append("</body></html>")
    with open(path, "w") as fh:
        fh.write("\n".join(parts))
