"""Figures: the latent space with paths and centroids, and which features counterfactuals change."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from ..explainer import Lapace
from ..result import Explanation
from ..rules import changed_features


def figure(width: float, height: float) -> tuple:
    """A figure and its axes on an Agg canvas of its own: no pyplot state, so the caller's backend is untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def latent_space(explainer: Lapace, X_train: pd.DataFrame, result: Explanation, path: str, n_paths: int = 5,
                 max_points: int = 3000, random_state: int = 0) -> None:
    """Save a 2-D projection (PCA) of training encodings, the centroids and the latent paths of a few queries."""
    rng = np.random.RandomState(random_state)
    sample = X_train.iloc[rng.permutation(len(X_train))[:max_points]]
    z = explainer.transform(sample)
    labels = explainer.predict_proba(sample).argmax(1)
    mu = explainer.centroid_latents_
    center = z.mean(0)
    _, _, vt = np.linalg.svd(z - center, full_matrices=False)
    project = lambda a: (a - center) @ vt[:2].T  # noqa: E731
    zp, mp = project(z), project(mu)
    from matplotlib import colormaps

    fig, ax = figure(7.5, 6)
    colours = colormaps["tab10"](np.arange(explainer.n_classes_))
    for c in range(explainer.n_classes_):
        ax.scatter(*zp[labels == c].T, s=4, alpha=0.25, color=colours[c], label="predicted %s" % explainer.classes_[c])
        own = explainer.centroid_class_ == c
        ax.scatter(*mp[own].T, marker="*", s=260, color=colours[c], edgecolor="black", zorder=4)
    queries = result.queries.iloc[:n_paths]
    zq = project(explainer.transform(queries))
    chosen = result.to_frame()
    names = ["%s/%d" % (explainer.classes_[k // explainer.components_per_class], k % explainer.components_per_class)
             for k in range(len(mu))]
    for i, label in enumerate(queries.index):
        rows = chosen[chosen["query"] == label]
        for _, row in rows.iterrows():
            end = mp[names.index(row["component"])]
            ax.plot([zq[i, 0], end[0]], [zq[i, 1], end[1]], color="grey", lw=0.8, zorder=3)
            if row["valid"]:
                p = zq[i] + row["tau"] * (end - zq[i])
                ax.scatter(*p, marker="o", s=30, color="black", zorder=5)
        ax.scatter(*zq[i], marker="X", s=80, color="red", zorder=5)
    ax.set_title("L-GMVAE latent space (PCA): centroids (stars), queries (red X),\n"
                 "paths to the target centroids and the counterfactual chosen on each (dots)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(loc="best", markerscale=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def feature_changes(explainer: Lapace, results: dict, path: str, title: Optional[str] = None) -> None:
    """Save a bar chart of how often each feature changes, per strategy (``{name: Explanation}``)."""
    schema = explainer.schema_
    fig, ax = figure(8, 0.35 * len(schema.features) + 1.5)
    width = 0.8 / max(1, len(results))
    y = np.arange(len(schema.features))
    for i, (name, res) in enumerate(results.items()):
        cf = res.counterfactuals
        if len(cf) == 0:
            continue
        factual = res.queries.loc[cf.index.get_level_values("query")]
        ax.barh(y + i * width, changed_features(schema, factual, cf).mean(0), height=width, label=name)
    ax.set_yticks(y + width * (len(results) - 1) / 2)
    ax.set_yticklabels(schema.features)
    ax.invert_yaxis()
    ax.set_xlabel("share of counterfactuals that change the feature")
    ax.set_xlim(0, 1)
    ax.set_title(title or "Which features the counterfactuals change")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
