"""Feature schema: which raw columns exist, their types, bounds and declared constraints.

Feature types:

- **continuous**: numbers, min-max scaled with their training ``ranges``; ``integer`` ones are rounded;
- **point mass** (``point_mass``): continuous features where one value (0, or the minimum or maximum) is held by a
  large share of rows, such as capital gains or payments; the decoder models "at the mass or not" and the value
  apart, so a decoded row is never a conditional mean of zeros and large values;
- **discrete** (``discrete``): numeric features with few observed values (counts, survey codes); they only ever take
  an observed value;
- **ordinal** (``ordinal``): ordered categories (ratings, levels); their distance and change cost count steps;
- **categorical**: unordered categories, one-hot encoded.

``continuous`` lists every numeric feature (point-mass and discrete ones included); ``point_mass`` and
``discrete`` refine some of them. ``FeatureSchema.infer`` detects the types with documented thresholds
(:data:`DISCRETE_MAX_VALUES`, :data:`POINT_MASS_MIN_SHARE`), each overridable.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .relations import derived_of, relations_of

MONOTONE_DIRECTIONS = ("increase", "decrease")

DISCRETE_MAX_VALUES = 20
"""``infer``: a numeric column with at most this many distinct values is discrete."""

POINT_MASS_MIN_SHARE = 0.1
"""``infer``: a numeric column whose most frequent value is 0, its minimum or its maximum, and is held by at least
this share of rows, has a point mass there."""

MAX_CATEGORIES = 1000
"""``infer``: a text column with more distinct values than this is refused (an id or free text, not a category)."""

MAX_RANGES = 1e6
"""``validate``: a number farther than this many ranges from the training range is rejected as absurd."""

MAX_DECIMALS = 6
"""``infer``: numeric values are rounded to at most this many decimals when a column's own precision is finer."""


class FeatureSchema:
    """Description of a tabular dataset's raw features.

    Parameters
    ----------
    continuous
        Names of numeric features (min-max scaled when encoded), point-mass and discrete ones included.
    categorical
        Mapping from an unordered categorical feature's name to its categories.
    immutable
        Features declared immutable (e.g. race, sex).
    monotone
        Mapping from feature name to ``"increase"`` or ``"decrease"`` (numeric or ordinal features).
    ranges
        Training ``(min, max)`` of every continuous feature.
    integer
        Continuous features whose values are integers (rounded when decoding).
    order
        Raw column order; default continuous, categorical, then ordinal.
    dtypes
        Raw dtype name per feature, restored when decoding.
    point_mass
        ``{continuous feature: mass value}``: features with a point mass (see the module docstring).
    discrete
        ``{continuous feature: sorted observed values}``: features that only take those values.
    ordinal
        ``{feature: categories from lowest to highest}``: ordered categorical features.
    precision
        ``{numeric feature: decimals}``: outputs are rounded to the data's own precision (0 for integers).
    derived
        ``{continuous feature: expression of the others}``, e.g. ``{"share": "12 * (expenditure + 1) / income"}``:
        computed on every decoded row, never generated (:mod:`lapace_plugin.relations`).
    relations
        Relations every counterfactual keeps, e.g. ``["months <= 12 * age", "change(months) <= 12 * change(age)"]``
        (strings, :class:`~lapace_plugin.relations.Relation` objects with a tolerance, or their dicts).
    """

    def __init__(
        self,
        continuous: Sequence[str] = (),
        categorical: Optional[Mapping[str, Sequence[Any]]] = None,
        immutable: Sequence[str] = (),
        monotone: Optional[Mapping[str, str]] = None,
        ranges: Optional[Mapping[str, Tuple[float, float]]] = None,
        integer: Sequence[str] = (),
        order: Optional[Sequence[str]] = None,
        dtypes: Optional[Mapping[str, str]] = None,
        point_mass: Optional[Mapping[str, float]] = None,
        discrete: Optional[Mapping[str, Sequence[float]]] = None,
        ordinal: Optional[Mapping[str, Sequence[Any]]] = None,
        precision: Optional[Mapping[str, int]] = None,
        derived: Optional[Mapping[str, str]] = None,
        relations: Optional[Sequence[Any]] = None,
    ) -> None:
        self.continuous: List[str] = list(continuous)
        self.categorical: Dict[str, List[Any]] = {k: list(v) for k, v in (categorical or {}).items()}
        self.ordinal: Dict[str, List[Any]] = {k: list(v) for k, v in (ordinal or {}).items()}
        self.immutable: List[str] = list(immutable)
        self.monotone: Dict[str, str] = dict(monotone or {})
        self.ranges: Dict[str, Tuple[float, float]] = {
            k: (float(lo), float(hi)) for k, (lo, hi) in (ranges or {}).items()
        }
        self.integer: List[str] = list(integer)
        self.point_mass: Dict[str, float] = {k: float(v) for k, v in (point_mass or {}).items()}
        self.discrete: Dict[str, List[float]] = {k: sorted(float(x) for x in v) for k, v in (discrete or {}).items()}
        self.precision: Dict[str, int] = {k: int(v) for k, v in (precision or {}).items()}
        default_order = self.continuous + list(self.categorical) + list(self.ordinal)
        self.features: List[str] = list(order) if order is not None else default_order
        self.dtypes: Dict[str, str] = dict(dtypes or {})
        self.derived = derived_of(derived, self.continuous)
        self.relations = relations_of(relations, self.continuous)
        self.suggested_relations: List[str] = []  # found by ``infer`` in the data, never applied silently
        self._check()

    def _check(self) -> None:
        kinds = (("continuous", self.continuous), ("categorical", list(self.categorical)), ("ordinal", list(self.ordinal)))
        for i, (a, names_a) in enumerate(kinds):
            for b, names_b in kinds[i + 1 :]:
                both = set(names_a) & set(names_b)
                if both:
                    raise ValueError("features declared both %s and %s: %s" % (a, b, sorted(both)))
        declared = set(self.continuous) | set(self.categorical) | set(self.ordinal)
        if set(self.features) != declared or len(self.features) != len(declared):
            raise ValueError(
                "order must list every continuous, categorical and ordinal feature exactly once; got %s for %s"
                % (self.features, sorted(declared, key=str))
            )
        if not self.features:
            raise ValueError("a schema needs at least one feature")
        for name in self.continuous:
            if name not in self.ranges:
                raise ValueError("continuous feature %r has no range; pass ranges={%r: (min, max)}" % (name, name))
        for kind, groups in (("categorical", self.categorical), ("ordinal", self.ordinal)):
            for name, cats in groups.items():
                if len(cats) < 1 or len(set(cats)) != len(cats):
                    raise ValueError("%s feature %r needs distinct categories, got %s" % (kind, name, cats))
        for group, names in (("immutable", self.immutable), ("integer", self.integer), ("monotone", self.monotone)):
            unknown = [n for n in names if n not in declared]
            if unknown:
                raise ValueError("%s features %s are not in the schema; features: %s" % (group, unknown, self.features))
        for name, direction in self.monotone.items():
            if direction not in MONOTONE_DIRECTIONS:
                raise ValueError("monotone direction for %r must be 'increase' or 'decrease', got %r" % (name, direction))
            if name in self.categorical:
                raise ValueError("monotone feature %r must be continuous or ordinal (unordered categories have no direction)" % name)
        for group, names in (("integer", self.integer), ("point_mass", self.point_mass), ("discrete", self.discrete),
                             ("precision", self.precision)):
            bad = [n for n in names if n not in self.continuous]
            if bad:
                raise ValueError("%s features must be continuous: %s" % (group, bad))
        both = set(self.point_mass) & set(self.discrete)
        if both:
            raise ValueError("features %s are declared both point_mass and discrete; a discrete feature's observed values "
                             "already model a point mass" % sorted(both))
        for name, values in self.discrete.items():
            if not values:
                raise ValueError("discrete feature %r needs at least one observed value" % name)

    # ------------------------------------------------------------------ construction
    @classmethod
    def infer(
        cls,
        df: pd.DataFrame,
        categorical: Optional[Iterable[str]] = None,
        immutable: Sequence[str] = (),
        monotone: Optional[Mapping[str, str]] = None,
        ordinal: Optional[Mapping[str, Sequence[Any]]] = None,
        discrete_max_values: Optional[int] = DISCRETE_MAX_VALUES,
        point_mass_min_share: Optional[float] = POINT_MASS_MIN_SHARE,
        derived: Optional[Mapping[str, str]] = None,
        relations: Optional[Sequence[Any]] = None,
        suggest: bool = True,
    ) -> "FeatureSchema":
        """Infer a schema from a raw DataFrame of features.

        ``categorical=None`` treats object, category, string and bool columns as categorical and numeric ones as
        continuous; ordered pandas ``Categorical`` columns and the columns in ``ordinal`` (``{name: categories from
        lowest to highest}``) are ordinal. Ranges are the frame's min and max; numeric columns whose values are all
        integral are integer. A numeric column with at most ``discrete_max_values`` distinct values is discrete; one
        whose most frequent value (0, its minimum or its maximum) holds at least ``point_mass_min_share`` of the rows
        has a point mass there. Pass ``None`` to either threshold to turn that detection off. A categorical column
        with more than :data:`MAX_CATEGORIES` distinct values is refused. ``derived`` and ``relations`` are declared as
        in the constructor; with ``suggest``, near-deterministic relations found between numeric columns are listed in
        ``suggested_relations`` (:mod:`lapace_plugin.discovery`), never applied.
        """
        from .params import Integer, Real  # params imports this module

        if discrete_max_values is not None:
            Integer(0).check("discrete_max_values", discrete_max_values)
        if point_mass_min_share is not None:
            Real(0.0, 1.0, low_open=True).check("point_mass_min_share", point_mass_min_share)
        if not isinstance(df, pd.DataFrame) or df.empty:
            raise ValueError("FeatureSchema.infer needs a non-empty DataFrame of features")
        _check_unique_columns(df, "the frame")
        ordinal = {k: list(v) for k, v in (ordinal or {}).items()}
        for c in df.columns:
            dtype = df[c].dtype
            if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered and c not in ordinal:
                ordinal[c] = list(dtype.categories)
        missing = [c for c in ordinal if c not in df.columns]
        if missing:
            raise ValueError("ordinal columns %s are not in the frame; columns: %s" % (missing, list(df.columns)))
        if categorical is None:
            cat_names = [c for c in df.columns if not _is_numeric(df[c]) and c not in ordinal]
        else:
            cat_names = [c for c in categorical if c not in ordinal]
            missing = [c for c in cat_names if c not in df.columns]
            if missing:
                raise ValueError("categorical columns %s are not in the frame; columns: %s" % (missing, list(df.columns)))
        many = {c: n for c, n in ((c, df[c].nunique()) for c in cat_names) if n > MAX_CATEGORIES}
        if many:
            c = next(iter(many))
            raise ValueError("categorical column %r has %d distinct values; more than %d is an id or free text, not a category: "
                             "drop it (or encode it)" % (c, many[c], MAX_CATEGORIES))
        cont_names = [c for c in df.columns if c not in cat_names and c not in ordinal]
        for c in cont_names:
            if not _is_numeric(df[c]):
                raise ValueError("column %r is not numeric; list it in categorical=[...]" % c)
        nan_cols = [c for c in df.columns if df[c].isna().any()]
        if nan_cols:
            raise ValueError("columns %s contain NaN; drop or impute missing values first" % nan_cols)
        for c, cats in ordinal.items():
            unknown = sorted({v for v in df[c].unique() if v not in set(cats)}, key=str)
            if unknown:
                raise ValueError("ordinal column %r has values %s outside its ordered categories %s" % (c, unknown[:10], cats))
        values = {c: df[c].to_numpy(dtype=float) for c in cont_names}
        discrete: Dict[str, List[float]] = {}
        point_mass: Dict[str, float] = {}
        for c, v in values.items():
            distinct = np.unique(v)
            if discrete_max_values is not None and len(distinct) <= discrete_max_values:
                discrete[c] = distinct.tolist()
                continue
            mass = _point_mass(v, point_mass_min_share)
            if mass is not None:
                point_mass[c] = mass
        schema = cls(
            continuous=cont_names,
            categorical={c: _sorted_unique(df[c]) for c in cat_names},
            immutable=immutable,
            monotone=monotone,
            ranges={c: (float(v.min()), float(v.max())) for c, v in values.items()},
            integer=[c for c, v in values.items() if np.all(np.mod(v, 1) == 0)],
            order=list(df.columns),
            dtypes={c: str(df[c].dtype) for c in df.columns},
            point_mass=point_mass,
            discrete=discrete,
            ordinal=ordinal,
            precision={c: _decimals(v) for c, v in values.items()},
            derived=derived,
            relations=relations,
        )
        if suggest:
            from .discovery import suggest_relations

            schema.suggested_relations = suggest_relations(df[cont_names], schema)
        return schema

    def with_data(self, df: pd.DataFrame) -> "FeatureSchema":
        """The same declarations with the data-derived parts measured on ``df``: ranges and discrete values.

        Use it to scale with training rows only when the schema came from a larger frame.
        """
        df = self.validate(df, name="data")
        d = self.to_dict()
        d["ranges"] = {c: [float(df[c].min()), float(df[c].max())] for c in self.continuous}
        d["discrete"] = {c: np.unique(df[c].to_numpy(dtype=float)).tolist() for c in self.discrete}
        return FeatureSchema.from_dict(d)

    # ------------------------------------------------------------------ validation
    def validate(self, df: Any, name: str = "query") -> pd.DataFrame:
        """Check a raw frame against the schema and return it with the schema's column order.

        Raises ``ValueError`` naming the problem: not a DataFrame, empty, duplicate, missing or extra columns, NaN,
        infinite or absurd numbers (more than :data:`MAX_RANGES` ranges outside the training range), non-numeric
        continuous values, unknown categories. A Series is one row.
        """
        if isinstance(df, pd.Series):
            df = df.to_frame().T.infer_objects()  # a mixed-dtype Series comes back as object columns
        if not isinstance(df, pd.DataFrame):
            raise TypeError("%s must be a pandas DataFrame with columns %s, got %s" % (name, self.features, type(df).__name__))
        if len(df) == 0:
            raise ValueError("%s is empty; pass at least one row" % name)
        _check_unique_columns(df, name)
        missing = [c for c in self.features if c not in df.columns]
        if missing:
            raise ValueError("%s is missing column(s) %s; expected columns: %s" % (name, missing, self.features))
        extra = [c for c in df.columns if c not in self.features]
        if extra:
            raise ValueError("%s has unexpected column(s) %s; expected columns: %s" % (name, extra, self.features))
        df = df[self.features]
        nan_cols = [c for c in self.features if df[c].isna().any()]
        if nan_cols:
            raise ValueError("%s contains NaN in column(s) %s; counterfactuals need complete rows" % (name, nan_cols))
        for c in self.continuous:
            if not _is_numeric(df[c]):
                raise ValueError("%s column %r must be numeric, got dtype %s" % (name, c, df[c].dtype))
            values = df[c].to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise ValueError("%s column %r has infinite value(s); counterfactuals need finite numbers" % (name, c))
            lo, hi = self.ranges[c]
            far = np.abs(values - (lo + hi) / 2.0) > MAX_RANGES * max(hi - lo, 1.0)
            if far.any():
                raise ValueError(
                    "%s column %r has value(s) such as %r, more than %g ranges away from the training range [%g, %g]"
                    % (name, c, values[far][0], MAX_RANGES, lo, hi)
                )
        for c, cats in list(self.categorical.items()) + list(self.ordinal.items()):
            known = set(cats)
            unknown = sorted({v for v in df[c].unique() if v not in known}, key=str)
            if unknown:
                raise ValueError(
                    "%s column %r has unknown categor%s %s; known categories: %s"
                    % (name, c, "y" if len(unknown) == 1 else "ies", unknown[:10], cats)
                )
        return df

    def check_features(self, names: Iterable[str], what: str = "feature") -> None:
        """Raise ``ValueError`` if any of ``names`` is not a feature of the schema."""
        unknown = [n for n in names if n not in self.features]
        if unknown:
            raise ValueError("unknown %s(s) %s; features: %s" % (what, unknown, self.features))

    def kind(self, name: str) -> str:
        """``"categorical"``, ``"ordinal"``, ``"discrete"``, ``"point_mass"``, ``"integer"`` or ``"continuous"``."""
        for kind, names in (("categorical", self.categorical), ("ordinal", self.ordinal), ("discrete", self.discrete),
                            ("point_mass", self.point_mass), ("integer", self.integer)):
            if name in names:
                return kind
        self.check_features([name])
        return "continuous"

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe dictionary (categories converted to plain Python values)."""
        return {
            "continuous": self.continuous,
            "categorical": {k: [_plain(v) for v in cats] for k, cats in self.categorical.items()},
            "ordinal": {k: [_plain(v) for v in cats] for k, cats in self.ordinal.items()},
            "immutable": self.immutable,
            "monotone": self.monotone,
            "ranges": {k: [lo, hi] for k, (lo, hi) in self.ranges.items()},
            "integer": self.integer,
            "point_mass": self.point_mass,
            "discrete": self.discrete,
            "precision": self.precision,
            "order": self.features,
            "dtypes": self.dtypes,
            "derived": {k: e.text for k, e in self.derived.items()},
            "relations": [r.to_dict() for r in self.relations],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureSchema":
        """Inverse of :meth:`to_dict`; JSON turns non-string feature names used as keys into strings, and they are
        mapped back to the names in ``order``."""
        names = {str(f): f for f in d.get("order") or list(d["continuous"]) + list(d["categorical"])}

        def keys(mapping: Optional[Mapping[str, Any]]) -> Optional[Dict[Any, Any]]:
            return None if mapping is None else {names.get(str(k), k): v for k, v in mapping.items()}

        d = dict(d, **{k: keys(d.get(k)) for k in ("categorical", "ordinal", "monotone", "ranges", "point_mass", "discrete",
                                                  "precision", "dtypes")})
        return cls(
            continuous=d["continuous"],
            categorical=d["categorical"] or {},
            immutable=d.get("immutable", ()),
            monotone=d.get("monotone"),
            ranges={k: tuple(v) for k, v in d["ranges"].items()},
            integer=d.get("integer", ()),
            order=d.get("order"),
            dtypes=d.get("dtypes"),
            point_mass=d.get("point_mass"),
            discrete=d.get("discrete"),
            ordinal=d.get("ordinal"),
            precision=d.get("precision"),
            derived=keys(d.get("derived")),
            relations=d.get("relations"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        extra = "".join(
            ", %d %s" % (len(group), label)
            for label, group in (("ordinal", self.ordinal), ("discrete", self.discrete), ("point-mass", self.point_mass))
            if group
        )
        return "FeatureSchema(%d continuous, %d categorical%s, immutable=%s, monotone=%s)" % (
            len(self.continuous),
            len(self.categorical),
            extra,
            self.immutable,
            self.monotone,
        )


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _sorted_unique(s: pd.Series) -> List[Any]:
    values = list(pd.unique(s))
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _point_mass(values: np.ndarray, min_share: Optional[float]) -> Optional[float]:
    """The point-mass value of a numeric column (see :data:`POINT_MASS_MIN_SHARE`), or ``None``."""
    if min_share is None:
        return None
    distinct, counts = np.unique(values, return_counts=True)
    top = int(np.argmax(counts))
    mass = float(distinct[top])
    if counts[top] < min_share * len(values) or not (mass == 0 or top in (0, len(distinct) - 1)):
        return None
    return mass


def _decimals(values: np.ndarray) -> int:
    """Fewest decimals (up to :data:`MAX_DECIMALS`) that represent every value exactly."""
    for d in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return d
    return MAX_DECIMALS


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _check_unique_columns(df: pd.DataFrame, name: str) -> None:
    duplicated = sorted({c for c in df.columns[df.columns.duplicated()]}, key=str)
    if duplicated:
        raise ValueError("%s has duplicate column(s) %s; every feature must appear once" % (name, duplicated))
