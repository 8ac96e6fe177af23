"""Actionability constraints: declaration, checking on raw rows, and their encoded-space forms."""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import torch

from .distance import span
from .encoding import TabularEncoder
from .relations import Relation, derived_relations, relations_of, through_derived
from .rules import CHANGE_TOL, decimals_of
from .schema import FeatureSchema

KINDS = ("immutable", "increase", "decrease", "range", "category", "relation")
"""Kinds of constraint, the columns of :meth:`Constraints.violations_by_kind`."""


class Constraints:
    """Actionability constraints on counterfactuals.

    Parameters
    ----------
    immutable
        Features copied from the factual.
    increase, decrease
        Continuous or ordinal features that may only go up (down) relative to the factual: a list of names, or a
        mapping from a name to the largest change allowed (raw units; levels for ordinal features; ``None``: no
        limit), e.g. ``increase={"age": 5}`` for recourse within five years.
    ranges
        ``{feature: (low, high)}`` allowed raw values of continuous features (``None`` for an open end).
    categories
        ``{feature: [allowed categories]}`` for categorical features.
    relations
        Relations between numeric features every counterfactual keeps, e.g. ``"months <= 12 * age"`` or changes that
        move together, ``"change(months) <= 12 * change(age)"`` (:mod:`lapace_plugin.relations`). The schema's own
        ``relations`` and derived features are always added.
    """

    def __init__(
        self,
        immutable: Sequence[str] = (),
        increase: Union[Sequence[str], Mapping[str, Optional[float]]] = (),
        decrease: Union[Sequence[str], Mapping[str, Optional[float]]] = (),
        ranges: Optional[Mapping[str, Tuple[Optional[float], Optional[float]]]] = None,
        categories: Optional[Mapping[str, Sequence[Any]]] = None,
        relations: Optional[Sequence[Any]] = None,
    ) -> None:
        self.immutable = list(immutable)
        self.increase = list(increase)
        self.decrease = list(decrease)
        self.limits: Dict[str, float] = {  # largest allowed change of monotone features that have one
            k: float(v) for group in (increase, decrease) if isinstance(group, Mapping) for k, v in group.items() if v is not None
        }
        self.ranges = {k: _bounds(k, bound) for k, bound in (ranges or {}).items()}
        self.categories = {k: list(v) for k, v in (categories or {}).items()}
        self.relations: List[Relation] = relations_of(relations, None)

    @classmethod
    def from_schema(cls, schema: FeatureSchema) -> "Constraints":
        """The schema's declared constraints: its immutable and monotone features."""
        return cls(
            immutable=schema.immutable,
            increase=[f for f, d in schema.monotone.items() if d == "increase"],
            decrease=[f for f, d in schema.monotone.items() if d == "decrease"],
        )

    @classmethod
    def coerce(cls, value: Union[None, str, Mapping[str, Any], "Constraints", FeatureSchema], schema: FeatureSchema) -> Optional["Constraints"]:
        """Turn ``None``, ``"schema"``, a schema, a dict or a ``Constraints`` into a checked ``Constraints`` (or ``None``),
        with the schema's relations and derived features added."""
        if value is None:
            value = cls()
        elif isinstance(value, FeatureSchema):
            value = cls.from_schema(value)
        elif isinstance(value, str):
            if value != "schema":
                raise ValueError("constraints must be None, 'schema', a dict or a Constraints; got %r" % value)
            value = cls.from_schema(schema)
        elif isinstance(value, Mapping):
            allowed = {"immutable", "increase", "decrease", "ranges", "categories", "relations"}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise ValueError("unknown constraint kind(s) %s; allowed: %s" % (unknown, sorted(allowed)))
            value = cls(**value)
        elif not isinstance(value, Constraints):
            raise TypeError("constraints must be None, 'schema', a dict or a Constraints, got %s" % type(value).__name__)
        value = copy.copy(value)
        known = {r.text for r in value.relations}
        value.relations = value.relations + [r for r in schema.relations + derived_relations(schema) if r.text not in known]
        value.check(schema)
        return value if not value.is_empty() else None

    def is_empty(self) -> bool:
        return not (self.immutable or self.increase or self.decrease or self.ranges or self.categories or self.relations)

    def check(self, schema: FeatureSchema) -> None:
        """Raise ``ValueError`` for a constraint on an unknown feature or of the wrong kind."""
        for kind, names in (
            ("immutable", self.immutable),
            ("increase", self.increase),
            ("decrease", self.decrease),
            ("ranges", list(self.ranges)),
            ("categories", list(self.categories)),
        ):
            schema.check_features(names, what="feature in %r constraint" % kind)
        for kind, names in (("increase", self.increase), ("decrease", self.decrease)):
            cats = [n for n in names if n in schema.categorical]
            if cats:
                raise ValueError("%r constraints apply to continuous and ordinal features only; %s are unordered categorical" % (kind, cats))
        not_numbers = [n for n in self.ranges if n not in schema.continuous]
        if not_numbers:
            raise ValueError("'ranges' constraints apply to continuous features only; %s are categorical or ordinal" % not_numbers)
        negative = {k: v for k, v in self.limits.items() if not v >= 0}
        if negative:
            raise ValueError("the largest change of a monotone feature must be a number >= 0, got %s" % negative)
        both = set(self.increase) & set(self.decrease)
        if both:
            raise ValueError("features %s cannot be both increase-only and decrease-only; use immutable" % sorted(both))
        for name, (lo, hi) in self.ranges.items():
            if lo > hi:
                raise ValueError("range for %r is empty: low %s > high %s" % (name, lo, hi))
            if name in schema.integer and not (math.isinf(lo) or math.isinf(hi)) and math.ceil(lo - 1e-9) > math.floor(hi + 1e-9):
                raise ValueError("range for integer feature %r holds no integer: (%s, %s)" % (name, lo, hi))
            train_lo, train_hi = schema.ranges[name]
            if hi < train_lo or lo > train_hi:
                raise ValueError(
                    "range (%s, %s) for %r lies outside the values the explainer learnt, [%g, %g]: counterfactuals are "
                    "decoded within them, so none could meet this range" % (lo, hi, name, train_lo, train_hi)
                )
        self.relations = relations_of(self.relations, schema.continuous)  # names an unknown or non-numeric column
        for name, allowed in self.categories.items():
            cats = schema.categorical.get(name, schema.ordinal.get(name))
            if cats is None:
                raise ValueError("'categories' constraints apply to categorical and ordinal features only; %r is continuous" % name)
            unknown = [c for c in allowed if c not in cats]
            if unknown:
                raise ValueError("allowed categories %s of %r are unknown; known: %s" % (unknown, name, cats))
            if not allowed:
                raise ValueError("no allowed category left for %r" % name)

    def signature_features(self) -> List[str]:
        """Features whose factual value changes the constrained result (immutable, monotone, read by ``change()``)."""
        return list(dict.fromkeys(self.immutable + self.increase + self.decrease + [c for r in self.relations for c in r.changes]))

    def violations(self, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, schema: Optional[FeatureSchema] = None) -> pd.DataFrame:
        """Boolean frame (rows of ``counterfactuals``, one column per constrained feature): True where broken.

        ``factuals`` must be aligned row by row with ``counterfactuals``. This is the one constraint checker of the
        package: the explainer judges every candidate with it, and so do the metrics and the adapters. Numeric values
        may differ by :data:`CHANGE_TOL` of the feature's range (``schema``; an absolute ``CHANGE_TOL`` without it).
        """
        out: Dict[str, np.ndarray] = {}
        for _, name, broken in self._checks(factuals, counterfactuals, schema):
            out[name] = out.get(name, np.zeros(len(counterfactuals), dtype=bool)) | broken
        return pd.DataFrame(out, index=counterfactuals.index, columns=list(out))

    def violations_by_kind(
        self, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, schema: Optional[FeatureSchema] = None
    ) -> pd.DataFrame:
        """Like :meth:`violations`, with one column per kind of constraint (:data:`KINDS`)."""
        out = {kind: np.zeros(len(counterfactuals), dtype=bool) for kind in KINDS}
        for kind, _, broken in self._checks(factuals, counterfactuals, schema):
            out[kind] |= broken
        return pd.DataFrame(out, index=counterfactuals.index, columns=list(KINDS))

    def broken(self, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, schema: Optional[FeatureSchema] = None) -> np.ndarray:
        """Per counterfactual row, whether it breaks any constraint."""
        out = np.zeros(len(counterfactuals), dtype=bool)
        for _, _, broken in self._checks(factuals, counterfactuals, schema):
            out |= broken
        return out

    def _checks(self, factuals: pd.DataFrame, counterfactuals: pd.DataFrame, schema: Optional[FeatureSchema]) -> Iterator[Tuple[str, str, np.ndarray]]:
        """``(kind, feature, broken rows)`` for every declared constraint."""
        if len(factuals) != len(counterfactuals):
            raise ValueError("factuals (%d rows) must be aligned with counterfactuals (%d rows)" % (len(factuals), len(counterfactuals)))

        def tol(name: str) -> float:
            return CHANGE_TOL * span(schema, name) if schema is not None and name in schema.ranges else CHANGE_TOL

        def numbers(frame: pd.DataFrame, name: str) -> np.ndarray:  # an ordinal feature's level
            if schema is not None and name in schema.ordinal:
                return pd.Categorical(frame[name].to_numpy(), categories=schema.ordinal[name]).codes.astype(float)
            return np.asarray(frame[name].to_numpy(), dtype=float)

        for name in self.immutable:
            a, b = factuals[name], counterfactuals[name]
            categorical = schema is not None and (name in schema.categorical or name in schema.ordinal)
            if categorical or not (pd.api.types.is_numeric_dtype(a.dtype) and pd.api.types.is_numeric_dtype(b.dtype)):
                yield "immutable", name, np.asarray(a.to_numpy(), dtype=object) != np.asarray(b.to_numpy(), dtype=object)
            else:
                yield "immutable", name, np.abs(numbers(counterfactuals, name) - numbers(factuals, name)) > tol(name)
        for kind, names, sign in (("increase", self.increase, 1.0), ("decrease", self.decrease, -1.0)):
            for name in names:
                change = sign * (numbers(counterfactuals, name) - numbers(factuals, name))
                yield kind, name, (change < -tol(name)) | (change > self.limits.get(name, math.inf) + tol(name))
        for name, (lo, hi) in self.ranges.items():
            v = numbers(counterfactuals, name)
            yield "range", name, (v < lo - tol(name)) | (v > hi + tol(name))
        for name, allowed in self.categories.items():
            yield "category", name, ~pd.Series(counterfactuals[name].to_numpy()).isin(list(allowed)).to_numpy()
        for rel in self.relations:
            scale = max([span(schema, c) for c in rel.columns] if schema is not None else [1.0])
            yield "relation", rel.text, rel.broken(counterfactuals, factuals, scale)

    def to_dict(self) -> Dict[str, Any]:
        def monotone(names: List[str]) -> Any:
            return {k: self.limits.get(k) for k in names} if any(k in self.limits for k in names) else names

        return {
            "immutable": self.immutable,
            "increase": monotone(self.increase),
            "decrease": monotone(self.decrease),
            "ranges": {k: [None if math.isinf(lo) else lo, None if math.isinf(hi) else hi] for k, (lo, hi) in self.ranges.items()},
            "categories": self.categories,
            "relations": [r.to_dict() for r in self.relations],
        }

    def __repr__(self) -> str:
        return "Constraints(%s)" % ", ".join("%s=%s" % kv for kv in self.to_dict().items() if kv[1])


def _bounds(name: str, bound: Any) -> Tuple[float, float]:
    """``(low, high)`` of a range constraint; ``None`` or an infinity is an open end, NaN is an error."""
    try:
        lo, hi = bound
    except (TypeError, ValueError):
        raise ValueError("range for %r must be a pair (low, high), with None for an open end; got %r" % (name, bound)) from None
    out = []
    for value, open_end in ((lo, -math.inf), (hi, math.inf)):
        if value is None:
            out.append(open_end)
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError("range for %r must hold numbers or None, got %r" % (name, bound)) from None
        if math.isnan(value):
            raise ValueError("range for %r has a NaN bound; use None for an open end" % name)
        out.append(value)
    return out[0], out[1]


class EncodedConstraints:
    """Constraints compiled for encoded rows: which points need repair, a differentiable penalty, a hard projection.

    Numeric-block features (continuous, point-mass values, typed ordinal levels) are constrained on their column;
    one-hot features (categorical; ordinal with the paper's decoder) on their group. A point-mass feature's gate
    follows its value after projection (:meth:`TabularEncoder.settle`); in the penalty its value counts as the soft
    expectation ``gate * value + (1 - gate) * mass``.
    """

    def __init__(self, constraints: Constraints, encoder: TabularEncoder) -> None:
        schema = encoder.schema
        self.encoder = encoder
        nc = encoder.n_continuous
        place = {name: encoder.column(name) for name in schema.features}
        self.immutable_cont = [place[n] for n in constraints.immutable if isinstance(place[n], int)]
        self.immutable_groups = [place[n] for n in constraints.immutable if isinstance(place[n], slice)]
        self.increase = [place[n] for n in constraints.increase if isinstance(place[n], int)]
        self.decrease = [place[n] for n in constraints.decrease if isinstance(place[n], int)]
        self.increase_groups = [place[n] for n in constraints.increase if isinstance(place[n], slice)]
        self.decrease_groups = [place[n] for n in constraints.decrease if isinstance(place[n], slice)]
        # largest scaled change of monotone numeric-block features that have one (integers: whole units)
        self.limits = {
            place[n]: (math.floor(v + 1e-9) if n in schema.integer else v) / encoder._span[place[n]]
            for n, v in constraints.limits.items() if isinstance(place[n], int)
        }
        lo = np.full(nc, -np.inf)
        hi = np.full(nc, np.inf)
        for name, (a, b) in constraints.ranges.items():
            j = place[name]
            if name in schema.integer:  # whole units inside the range (an open end stays open)
                a = a if math.isinf(a) else math.ceil(a - 1e-9)
                b = b if math.isinf(b) else math.floor(b + 1e-9)
            lo[j], hi[j] = a, b
        self.has_ranges = bool(constraints.ranges)
        span, base = encoder._span, encoder._lo
        self.lo = np.clip((lo - base) / span, -1e9, 1e9).astype(np.float32)
        self.hi = np.clip((hi - base) / span, -1e9, 1e9).astype(np.float32)
        self.forbidden = np.zeros(encoder.width, dtype=bool)
        self.levels: Dict[int, np.ndarray] = {}  # allowed scaled levels of typed ordinal features
        for name, allowed in constraints.categories.items():
            cats = schema.categorical.get(name) or schema.ordinal[name]
            where = place[name]
            if isinstance(where, slice):
                for i, cat in enumerate(cats):
                    if cat not in allowed:
                        self.forbidden[where.start + i] = True
            else:
                self.levels[where] = np.array([cats.index(c) for c in allowed], dtype=np.float32) / max(1, len(cats) - 1)
        self.gates = [(j, g) for _, j, g in encoder.gates]
        self.masses = torch.as_tensor(np.array(encoder._mass_scaled, dtype=np.float32))
        # relations (derived features hold by construction): raw numbers are the scaled ones times span plus low
        self.relations = [r for r in constraints.relations if r.derived is None]
        self.scales = [max(encoder._span[place[c]] for c in r.columns) for r in self.relations]

    def _relation_excess(self, raw: Any, raw_factuals: Any) -> List[Any]:
        """Per relation, how far rows with raw numeric blocks ``raw`` (``raw_factuals``) break it, in its scale."""
        schema, place = self.encoder.schema, self.encoder.column
        values = through_derived(schema, lambda c: raw[:, place(c)])
        change = through_derived(schema, lambda c: raw[:, place(c)] - raw_factuals[:, place(c)])
        out = []
        for rel, scale in zip(self.relations, self.scales):
            gap, slack = rel.excess(values, change)
            out.append((gap - slack) / scale)
        return out

    def needs_repair(self, points: np.ndarray, factuals: np.ndarray) -> np.ndarray:
        """Rows of snapped encoded ``points (N, D)`` whose decoding breaks a constraint against ``factuals (N, D)``.

        This decides which decoded points get gradient repair; whether a returned row respects the constraints is
        judged on raw rows by :meth:`Constraints.violations`.
        """
        tol = CHANGE_TOL  # encoded numbers are in scaled units: a share of the feature's range
        bad = np.zeros(len(points), dtype=bool)
        for j in self.immutable_cont:
            bad |= np.abs(points[:, j] - factuals[:, j]) > tol
        for sl in self.immutable_groups:
            bad |= np.abs(points[:, sl] - factuals[:, sl]).sum(1) > tol
        for j in self.increase:
            bad |= (points[:, j] < factuals[:, j] - tol) | (points[:, j] > factuals[:, j] + self.limits.get(j, np.inf) + tol)
        for j in self.decrease:
            bad |= (points[:, j] > factuals[:, j] + tol) | (points[:, j] < factuals[:, j] - self.limits.get(j, np.inf) - tol)
        for sl in self.increase_groups:
            bad |= points[:, sl].argmax(1) < factuals[:, sl].argmax(1)
        for sl in self.decrease_groups:
            bad |= points[:, sl].argmax(1) > factuals[:, sl].argmax(1)
        if self.has_ranges:
            nc = self.encoder.n_continuous
            bad |= ((points[:, :nc] < self.lo - tol) | (points[:, :nc] > self.hi + tol)).any(1)
        if self.forbidden.any():
            bad |= (points[:, self.forbidden] > 0.5).any(1)
        for j, allowed in self.levels.items():
            bad |= np.abs(points[:, j, None] - allowed[None, :]).min(1) > tol
        if self.relations:
            with np.errstate(divide="ignore", invalid="ignore"):
                for excess in self._relation_excess(self.encoder._raw_numeric(points), self.encoder._raw_numeric(factuals)):
                    bad |= ~(excess <= tol)
        return bad

    def penalty(self, decoded: torch.Tensor, factuals: torch.Tensor) -> torch.Tensor:
        """Differentiable violation ``(N,)`` of decoded rows (numbers in [0, 1], gate probabilities, softmax groups)."""
        values = decoded[:, : self.encoder.n_continuous]
        if self.gates:  # a point-mass value as its expectation under the soft gate
            cols = [j for j, _ in self.gates]
            gate = decoded[:, [g for _, g in self.gates]]
            expected = gate * values[:, cols] + (1.0 - gate) * self.masses.to(decoded.device)
            values = values.index_copy(1, torch.as_tensor(cols, device=decoded.device), expected)
        total = torch.zeros(len(decoded), dtype=decoded.dtype, device=decoded.device)
        for j in self.immutable_cont:
            total = total + (values[:, j] - factuals[:, j]).abs()
        for sl in self.immutable_groups:
            total = total + 1.0 - (decoded[:, sl] * factuals[:, sl]).sum(1)
        for j in self.increase:
            total = total + torch.relu(factuals[:, j] - values[:, j])
            if j in self.limits:
                total = total + torch.relu(values[:, j] - factuals[:, j] - float(self.limits[j]))
        for j in self.decrease:
            total = total + torch.relu(values[:, j] - factuals[:, j])
            if j in self.limits:
                total = total + torch.relu(factuals[:, j] - values[:, j] - float(self.limits[j]))
        if self.has_ranges:
            lo = torch.as_tensor(self.lo, device=decoded.device)
            hi = torch.as_tensor(self.hi, device=decoded.device)
            total = total + (torch.relu(lo - values) + torch.relu(values - hi)).sum(1)
        if self.forbidden.any():
            mask = torch.as_tensor(self.forbidden, device=decoded.device)
            total = total + decoded[:, mask].sum(1)
        for j, allowed in self.levels.items():
            total = total + (values[:, j, None] - torch.as_tensor(allowed, device=decoded.device)).abs().min(1)[0]
        if self.relations:
            nc = self.encoder.n_continuous
            lo = torch.as_tensor(self.encoder._lo, dtype=decoded.dtype, device=decoded.device)
            width = torch.as_tensor(self.encoder._span, dtype=decoded.dtype, device=decoded.device)
            for excess in self._relation_excess(values * width + lo, factuals[:, :nc] * width + lo):
                total = total + torch.where(excess > 0, excess, torch.zeros_like(excess))  # NaN: no gradient
        return total

    def project(
        self,
        decoded: np.ndarray,
        factuals: np.ndarray,
        snap: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        snapped: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """Snap decoded rows (with ``snap``, default the encoder's) and force every constraint: the result satisfies them all.

        ``snapped``: ``snap(decoded)`` when the caller has it already, reused where no category is forbidden (forbidden
        categories are masked out of ``decoded`` before snapping)."""
        if self.forbidden.any():
            decoded = np.array(decoded, dtype=np.float32)
            decoded[:, self.forbidden] = -1e9  # below any (corrected) probability, so no snapping picks them
            out = (snap or self.encoder.snap)(decoded)
        elif snapped is not None:
            out = snapped.copy()
        else:
            out = (snap or self.encoder.snap)(np.asarray(decoded, dtype=np.float32))
        for j in self.immutable_cont:
            out[:, j] = factuals[:, j]
        for sl in self.immutable_groups:
            out[:, sl] = factuals[:, sl]
        for j in self.increase:
            out[:, j] = np.clip(out[:, j], factuals[:, j], factuals[:, j] + self.limits.get(j, np.inf))
        for j in self.decrease:
            out[:, j] = np.clip(out[:, j], factuals[:, j] - self.limits.get(j, np.inf), factuals[:, j])
        for sl, wrong in [(sl, np.less) for sl in self.increase_groups] + [(sl, np.greater) for sl in self.decrease_groups]:
            back = wrong(out[:, sl].argmax(1), factuals[:, sl].argmax(1))
            out[back, sl] = factuals[back, sl]
        if self.has_ranges:
            nc = self.encoder.n_continuous
            out[:, :nc] = np.clip(out[:, :nc], self.lo, self.hi)
        for j, allowed in self.levels.items():
            out[:, j] = allowed[np.abs(out[:, j, None] - allowed[None, :]).argmin(1)]
        return self._settle_relations(self.encoder.settle(out), factuals)

    def _settle_relations(self, out: np.ndarray, factuals: np.ndarray) -> np.ndarray:
        """Move a relation's lone left-hand column to its bound (:meth:`Relation.settle`), rounded inwards to the
        data's precision; whether the row then keeps every constraint is judged on its raw row."""
        enc = self.encoder
        for rel in self.relations:
            raw, raw_factuals = enc._raw_numeric(out), enc._raw_numeric(factuals)
            values = through_derived(enc.schema, lambda c: raw[:, enc.column(c)])
            change = through_derived(enc.schema, lambda c: raw[:, enc.column(c)] - raw_factuals[:, enc.column(c)])
            name = rel.left.alone[0] if rel.left.alone else None
            if name is None or name in enc.schema.derived:
                continue
            j = enc.column(name)
            new = rel.settle(values, change, raw[:, j], raw_factuals[:, j])
            if new is None:
                continue
            decimals = decimals_of(enc.schema, name)
            if decimals is not None:
                unit = 10.0 ** -decimals
                new = (np.floor if rel.op == "<=" else np.ceil)(np.round(new / unit, 6)) * unit
            moved = new != raw[:, j]
            out[moved, j] = ((new[moved] - enc._lo[j]) / enc._span[j]).astype(np.float32)
        return enc.settle(out)
