"""Relations found in the data: suggestions ``FeatureSchema.infer`` lists in ``schema.suggested_relations``.

Two kinds, each holding on every training row (never applied: the user passes the ones they accept as ``derived`` or
``relations``):

- **formulas**: a numeric column that a small formula of one or two others gives within :data:`FORMULA_TOLERANCE`
  on every row: ``y == a * x + b``, ``y == (a * x + b) / z`` (a ratio) or ``y == (a * x + b) * z`` (a product);
- **bounds**: ``x <= k * y`` for a unit factor ``k`` of :data:`FACTORS` (the smallest that holds on every row), when
  some row comes close to it (:data:`BOUND_TIGHTNESS`) and values of the two columns drawn apart could break it
  (months at an address against age in years: ``months <= 12 * age``).

Candidates are screened on a small sample, then checked on up to :data:`MAX_ROWS` rows.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, List, Optional, Tuple

import numpy as np
import pandas as pd

FORMULA_TOLERANCE = 0.01
"""Largest error of a suggested formula on any row, as a share of the column's value (plus 1e-6 of its range)."""

FACTORS = (1, 7, 12, 24, 52, 60, 100, 365, 1000)
"""Unit factors tried for bounds ``x <= k * y``."""

BOUND_TIGHTNESS = 0.9
"""A bound ``x <= k * y`` is suggested when some row reaches this share of it."""

BOUND_BREAKABLE = 0.05
"""... and when at least this share of rows would break it with the ``y`` values of other rows."""

MAX_ROWS = 5000
SCREEN_ROWS = 64
MAX_COLUMNS = 30  # more numeric columns than this: no search (it grows with the cube of their number)


def _number(v: float) -> str:
    return ("%.4g" % v).replace("e+0", "e").replace("e-0", "e-")


def _decimals(v: np.ndarray) -> int:
    return next((d for d in range(7) if np.allclose(np.round(v, d), v, rtol=0, atol=1e-9)), 7)


def _name(c: Any) -> str:
    c = str(c)
    return c if c.isidentifier() else "`%s`" % c


def _fits(target: np.ndarray, x: np.ndarray) -> Optional[Tuple[float, float]]:
    """Least-squares ``(a, b)`` with ``target ~ a * x + b`` (``None`` when ``x`` is constant, ``target`` not finite or
    ``a`` is zero)."""
    var = x.var()
    if not np.all(np.isfinite(target)) or var <= 0:
        return None
    a = float(((x - x.mean()) * (target - target.mean())).mean() / var)
    b = float(target.mean() - a * x.mean())
    return (a, b) if abs(a) > 1e-12 else None


def suggest_relations(frame: pd.DataFrame, schema: Any = None, random_state: int = 0) -> List[str]:
    """Relations holding on every row of the numeric ``frame`` (module docstring), as relation strings."""
    numeric = [c for c in frame.columns if frame[c].nunique() > 2 and (schema is None or c not in schema.derived)]
    if len(numeric) < 2 or len(numeric) > MAX_COLUMNS:
        return []
    rows = frame[numeric].sample(min(len(frame), MAX_ROWS), random_state=random_state) if len(frame) > MAX_ROWS else frame
    full = {c: rows[c].to_numpy(dtype=float) for c in numeric}
    screen = {c: v[:SCREEN_ROWS] for c, v in full.items()}
    spans = {c: float(v.max() - v.min()) for c, v in full.items()}
    out: List[str] = []

    def formula(y: str, x: str, z: Optional[str], kind: str) -> Optional[str]:
        for data, final in ((screen, False), (full, True)):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                target = data[y] if z is None else (data[y] * data[z] if kind == "/" else data[y] / data[z])
            fit = _fits(target, data[x])
            if fit is None:
                return None
            a, b = fit
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                base = a * data[x] + b
                predicted = base if z is None else (base / data[z] if kind == "/" else base * data[z])
            slack = (1 if final else 2) * FORMULA_TOLERANCE * np.abs(data[y]) + 1e-6 * spans[y]  # screening: looser
            if not np.all(np.abs(data[y] - predicted) <= slack):
                return None
        inner = "%s * %s" % (_number(a), _name(x)) + ("" if abs(b) < 1e-9 * max(1.0, abs(a)) else " %s %s" % ("+-"[b < 0], _number(abs(b))))
        return "%s == %s" % (_name(y), inner if z is None else "(%s) %s %s" % (inner, kind, _name(z)))

    explained = set()
    related: List[set] = []  # column sets of formulas found: one formula per set
    # a formula's target is preferably the most precise column (a ratio such as a share, rather than its inputs)
    numeric = sorted(numeric, key=lambda c: -_decimals(full[c]))
    for y in numeric:
        for x in numeric:
            if x != y and y not in explained and not any(s <= {x, y} for s in related):
                found = formula(y, x, None, "")
                if found:
                    out.append(found)
                    explained.add(y)
                    related.append({x, y})
    for y, x, z in permutations(numeric, 3):
        if y in explained or any(s <= {x, y, z} for s in related):
            continue
        nonzero = np.all(full[z] != 0)
        for kind in ("/", "*"):
            found = formula(y, x, z, kind) if nonzero else None
            if found:
                out.append(found)
                explained.add(y)
                related.append({x, y, z})
                break
    rng = np.random.RandomState(random_state)
    for x, y in permutations(numeric, 2):
        a, b = full[x], full[y]
        if (b <= 0).any():
            continue
        ratio = float(np.max(a / b))
        k = next((f for f in FACTORS if ratio <= f), None)
        # tight (some row reaches 90% of the bound) and breakable (values drawn apart would often cross it)
        if k is not None and ratio >= BOUND_TIGHTNESS * k and np.mean(a > k * rng.permutation(b)) >= BOUND_BREAKABLE:
            out.append("%s <= %s%s" % (_name(x), "" if k == 1 else "%d * " % k, _name(y)))
    return out
