"""Feature schema: which raw columns exist, their types, bounds and declared constraints."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

MONOTONE_DIRECTIONS = ("increase", "decrease")


class FeatureSchema:
    """Description of a tabular dataset's raw features.

    Parameters
    ----------
    continuous
        Names of numeric features (min-max scaled when encoded).
    categorical
        Mapping from a categorical feature's name to its ordered categories.
    immutable
        Features declared immutable (e.g. race, sex).
    monotone
        Mapping from feature name to ``"increase"`` or ``"decrease"``.
    ranges
        Training ``(min, max)`` of every continuous feature.
    integer
        Continuous features whose values are integers (rounded when decoding).
    order
        Raw column order; default continuous then categorical.
    dtypes
        Raw dtype name per feature, restored when decoding.
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
    ) -> None:
        self.continuous: List[str] = list(continuous)
        self.categorical: Dict[str, List[Any]] = {k: list(v) for k, v in (categorical or {}).items()}
        self.immutable: List[str] = list(immutable)
        self.monotone: Dict[str, str] = dict(monotone or {})
        self.ranges: Dict[str, Tuple[float, float]] = {
            k: (float(lo), float(hi)) for k, (lo, hi) in (ranges or {}).items()
        }
        self.integer: List[str] = list(integer)
        self.features: List[str] = list(order) if order is not None else self.continuous + list(self.categorical)
        self.dtypes: Dict[str, str] = dict(dtypes or {})
        self._check()

    def _check(self) -> None:
        both = set(self.continuous) & set(self.categorical)
        if both:
            raise ValueError("features declared both continuous and categorical: %s" % sorted(both))
        declared = set(self.continuous) | set(self.categorical)
        if set(self.features) != declared or len(self.features) != len(declared):
            raise ValueError(
                "order must list every continuous and categorical feature exactly once; got %s for %s"
                % (self.features, sorted(declared))
            )
        if not self.features:
            raise ValueError("a schema needs at least one feature")
        for name in self.continuous:
            if name not in self.ranges:
                raise ValueError("continuous feature %r has no range; pass ranges={%r: (min, max)}" % (name, name))
        for name, cats in self.categorical.items():
            if len(cats) < 1 or len(set(cats)) != len(cats):
                raise ValueError("categorical feature %r needs distinct categories, got %s" % (name, cats))
        for group, names in (("immutable", self.immutable), ("integer", self.integer), ("monotone", self.monotone)):
            unknown = [n for n in names if n not in declared]
            if unknown:
                raise ValueError("%s features %s are not in the schema; features: %s" % (group, unknown, self.features))
        for name, direction in self.monotone.items():
            if direction not in MONOTONE_DIRECTIONS:
                raise ValueError("monotone direction for %r must be 'increase' or 'decrease', got %r" % (name, direction))
            if name in self.categorical:
                raise ValueError("monotone feature %r must be continuous" % name)
        bad_int = [n for n in self.integer if n not in self.continuous]
        if bad_int:
            raise ValueError("integer features must be continuous: %s" % bad_int)

    # ------------------------------------------------------------------ construction
    @classmethod
    def infer(
        cls,
        df: pd.DataFrame,
        categorical: Optional[Iterable[str]] = None,
        immutable: Sequence[str] = (),
        monotone: Optional[Mapping[str, str]] = None,
    ) -> "FeatureSchema":
        """Infer a schema from a raw DataFrame of features.

        ``categorical=None`` treats object, category, string and bool columns as categorical and numeric
        ones as continuous. Ranges are the frame's min and max; numeric columns whose values are all
        integral are marked integer.
        """
        if not isinstance(df, pd.DataFrame) or df.empty:
            raise ValueError("FeatureSchema.infer needs a non-empty DataFrame of features")
        if categorical is None:
            cat_names = [c for c in df.columns if not _is_numeric(df[c])]
        else:
            cat_names = list(categorical)
            missing = [c for c in cat_names if c not in df.columns]
            if missing:
                raise ValueError("categorical columns %s are not in the frame; columns: %s" % (missing, list(df.columns)))
        cont_names = [c for c in df.columns if c not in cat_names]
        for c in cont_names:
            if not _is_numeric(df[c]):
                raise ValueError("column %r is not numeric; list it in categorical=[...]" % c)
        nan_cols = [c for c in df.columns if df[c].isna().any()]
        if nan_cols:
            raise ValueError("columns %s contain NaN; drop or impute missing values first" % nan_cols)
        categories = {c: _sorted_unique(df[c]) for c in cat_names}
        ranges = {c: (float(df[c].min()), float(df[c].max())) for c in cont_names}
        integer = [c for c in cont_names if np.all(np.mod(df[c].to_numpy(dtype=float), 1) == 0)]
        dtypes = {c: str(df[c].dtype) for c in df.columns}
        return cls(
            continuous=cont_names,
            categorical=categories,
            immutable=immutable,
            monotone=monotone,
            ranges=ranges,
            integer=integer,
            order=list(df.columns),
            dtypes=dtypes,
        )

    # ------------------------------------------------------------------ validation
    def validate(self, df: Any, name: str = "query") -> pd.DataFrame:
        """Check a raw frame against the schema and return it with the schema's column order.

        Raises ``ValueError`` naming the problem: not a DataFrame, empty, missing or extra columns,
        NaN, non-numeric continuous values, unknown categories.
        """
        if isinstance(df, pd.Series):
            df = df.to_frame().T
        if not isinstance(df, pd.DataFrame):
            raise TypeError("%s must be a pandas DataFrame with columns %s, got %s" % (name, self.features, type(df).__name__))
        if len(df) == 0:
            raise ValueError("%s is empty; pass at least one row" % name)
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
        for c, cats in self.categorical.items():
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

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe dictionary (categories converted to plain Python values)."""
        return {
            "continuous": self.continuous,
            "categorical": {k: [_plain(v) for v in cats] for k, cats in self.categorical.items()},
            "immutable": self.immutable,
            "monotone": self.monotone,
            "ranges": {k: [lo, hi] for k, (lo, hi) in self.ranges.items()},
            "integer": self.integer,
            "order": self.features,
            "dtypes": self.dtypes,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FeatureSchema":
        return cls(
            continuous=d["continuous"],
            categorical=d["categorical"],
            immutable=d.get("immutable", ()),
            monotone=d.get("monotone"),
            ranges={k: tuple(v) for k, v in d["ranges"].items()},
            integer=d.get("integer", ()),
            order=d.get("order"),
            dtypes=d.get("dtypes"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return "FeatureSchema(%d continuous, %d categorical, immutable=%s, monotone=%s)" % (
            len(self.continuous),
            len(self.categorical),
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


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
