"""``lapace bench``: explain time against the bare decode-and-classify floor, measured in the same run."""

from __future__ import annotations

import argparse
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from .. import datasets
from ..evaluation.models import make_classifier, split
from ..explainer import Lapace
from ..paths import interpolate


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lapace bench",
        description=(
            "Time Lapace.explain on N queries x m paths x (n_steps+1) points and compare it with the floor: "
            "decoding every path point once plus classifying every point once (raw rows through the "
            "classifier pipeline), measured side by side in the same process. Also times fit."
        ),
    )
    parser.add_argument("--dataset", default="adult", choices=datasets.names(), help="bundled dataset (default: adult)")
    parser.add_argument("--n-queries", type=int, default=1000, help="queries to explain (default: 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats; the best is reported (default: 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--epochs", type=int, default=None, help="maximum L-GMVAE epochs (default: chosen from data size)")
    return parser.parse_args(argv)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def floor_work(explainer: Lapace, queries, target: int) -> Tuple[int, Callable[[], object]]:
    """The floor: decode all path points once and classify them once. Returns (points, callable)."""
    m, steps = explainer.components_per_class, explainer.n_steps
    z_x = explainer.transform(queries)
    comps = target * m + np.arange(m)
    ends = np.broadcast_to(explainer.centroid_latents_[comps], (len(queries), m, explainer.latent_dim))
    taus = np.linspace(0, 1, steps + 1).reshape(1, 1, -1, 1)
    z = interpolate(z_x[:, None, None, :], ends[:, :, None, :], taus).reshape(-1, explainer.latent_dim)
    space = explainer._space()

    def run() -> object:
        points = explainer.encoder_.snap(space.decode(z))
        return explainer.predict_proba_(explainer.encoder_.decode(points))

    return len(z), run


class CountingClassifier:
    """``predict_proba`` that counts the rows it classifies, for comparing searches by classifier calls."""

    def __init__(self, predict_proba: Callable[..., np.ndarray]) -> None:
        self.predict_proba, self.rows = predict_proba, 0

    def __call__(self, X) -> np.ndarray:
        self.rows += len(X)
        return self.predict_proba(X)


def counted_explain(explainer: Lapace, queries, repeats: int, **settings) -> Tuple[float, float, object]:
    """Best time of ``explain(queries, **settings)``, classified rows per query, and the explanation."""
    counter = CountingClassifier(explainer.predict_proba_)
    explainer.predict_proba_ = counter
    try:
        run = lambda: explainer.explain(queries, **settings)  # noqa: E731
        seconds = best_time(run, repeats)
        counter.rows = 0
        result = run()
    finally:
        explainer.predict_proba_ = counter.predict_proba
    return seconds, counter.rows / len(queries), result


def compare_searches(explainer: Lapace, queries, target: int, path: str, repeats: int) -> dict:
    """Grid against fast search on the same paths: time, classified rows per query and agreement."""
    out = {}
    for search in ("grid", "fast"):
        out[search + "_s"], out[search + "_rows"], out[search] = counted_explain(
            explainer, queries, repeats, target_class=target, path=path, search=search
        )
    grid, fast = (out[k].to_frame().set_index(["query", "component"]) for k in ("grid", "fast"))
    cols = list(explainer.schema_.features) + ["valid"]
    same = (grid[cols].fillna(-1).astype(str) == fast[cols].fillna(-1).astype(str)).all(axis=1)
    out["identical"] = float(same.mean())
    out["later"] = float((fast["tau"] > grid["tau"]).mean())
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    ds = datasets.load(args.dataset)
    X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=args.seed)
    model = make_classifier(ds.schema, "rf", random_state=args.seed).fit(X_train, y_train)
    t = time.perf_counter()
    explainer = Lapace(schema=ds.schema, random_state=args.seed, epochs=args.epochs)
    explainer.fit(X_train, predict_proba=model.predict_proba, classes=model.classes_)
    fit_seconds = time.perf_counter() - t
    predicted = model.predict_proba(X_test).argmax(1)
    target = 1 if ds.favourable is None else list(model.classes_).index(ds.favourable)
    pool = X_test[predicted != target]
    queries = pool.iloc[np.arange(args.n_queries) % len(pool)]
    queries.index = np.arange(len(queries))
    n_points, floor = floor_work(explainer, queries, target)
    floor_s = best_time(floor, args.repeats)
    last_s = best_time(lambda: explainer.explain(queries, target_class=target, strategy="last"), args.repeats)
    cons_s = {
        search: best_time(lambda: explainer.explain(queries, target_class=target, constraints="schema", search=search), 1)
        for search in ("grid", "fast")
    }
    print("\n%s: %d training rows, %d queries x %d paths x %d steps = %d decoded points (random forest, 100 trees)"
          % (ds.name, len(X_train), len(queries), explainer.components_per_class, explainer.n_steps + 1, n_points))
    print("fit (L-GMVAE, %d epochs):                %8.2f s" % (len(explainer.history_), fit_seconds))
    print("floor (decode once + classify once):     %8.3f s" % floor_s)
    for path in ("latent", "corrected"):
        c = compare_searches(explainer, queries, target, path, args.repeats)
        for search in ("grid", "fast"):
            secs = c[search + "_s"]
            print("explain first, path=%-9s search=%-4s %8.3f s  = %.2fx floor, %.5f s/query, %6.1f classified rows/query"
                  % (path, search, secs, secs / floor_s, secs / len(queries), c[search + "_rows"]))
        print("  fast vs grid: %.2fx fewer classified rows, %.2fx the time; %.1f%% of paths give the identical point, "
              "%.1f%% a later one; coverage %.3f (grid) / %.3f (fast)"
              % (c["grid_rows"] / c["fast_rows"], c["fast_s"] / c["grid_s"], 100 * c["identical"], 100 * c["later"],
                 c["grid"].coverage, c["fast"].coverage))
    revert_s, revert_rows, reverted = counted_explain(explainer, queries, args.repeats, target_class=target, revert=True)
    plain = explainer.explain(queries, target_class=target).counterfactuals
    print("explain first, path=%-9s revert=True %8.3f s  = %.2fx floor, %.5f s/query, %6.1f classified rows/query; "
          "features changed per counterfactual %.2f -> %.2f"
          % (explainer.path, revert_s, revert_s / floor_s, revert_s / len(queries), revert_rows,
             _changed(plain, queries), _changed(reverted.counterfactuals, queries)))
    print("explain last:                            %8.3f s  = %.3fx floor, %.5f s/query" % (last_s, last_s / floor_s, last_s / len(queries)))
    for search, secs in cons_s.items():
        print("explain first with the schema's constraints, path=%s search=%-4s %6.3f s  = %.2fx floor"
              % (explainer.path, search, secs, secs / floor_s))
    return 0


def _changed(counterfactuals, queries) -> float:
    """Mean number of features a counterfactual changes."""
    factuals = queries.loc[counterfactuals.index.get_level_values("query"), counterfactuals.columns]
    return float((counterfactuals.to_numpy() != factuals.to_numpy()).sum(1).mean())
