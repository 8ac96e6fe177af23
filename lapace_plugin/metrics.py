"""Metrics for counterfactual explanations, exactly as defined in SPEC section 4.

Every function works on the output of *any* method: a raw factual frame (its index holds the query
ids), a raw counterfactual frame that links each row to its factual through a ``query`` column or an
index level named ``query`` (LAPACE's ``Explanation.counterfactuals`` and the baselines' output both
have the latter), the classifier's ``predict_proba`` callable (raw DataFrame -> (n, L) array) and,
where needed, the raw training data.

Distances are per feature: a continuous feature contributes ``|a - b| / (hi - lo)`` with the
schema's training range, a categorical feature 0 (same category) or 1 (different); ``d`` is the
number of raw features.  Metrics that average over nothing (no counterfactuals at all) return NaN.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

QUERY = "query"
"""Name of the column or index level that links a counterfactual to its factual."""

CHANGE_TOL = 1e-6
"""A continuous feature counts as changed when it moves by more than this share of its range."""

CONSTRAINT_KINDS = ("immutable", "increase", "decrease", "range", "category")

PredictProba = Callable[[pd.DataFrame], Any]
TargetClass = Union[int, Sequence[int], Mapping[Any, int], pd.Series, np.ndarray]


# ----------------------------------------------------------------------------------------------
# Frame helpers
# ----------------------------------------------------------------------------------------------


def query_ids(counterfactuals: pd.DataFrame) -> np.ndarray:
    """Query id of every counterfactual row.

    Parameters
    ----------
    counterfactuals
        Frame with a ``query`` column or an index level named ``query`` (the column wins when
        both exist).

    Returns
    -------
    numpy.ndarray
        One query id per row, in row order.
    """
    if QUERY in counterfactuals.columns:
        return counterfactuals[QUERY].to_numpy()
    if QUERY in list(counterfactuals.index.names):
        return counterfactuals.index.get_level_values(QUERY).to_numpy()
    raise ValueError(
        "counterfactuals must link each row to its factual through a 'query' column or an index "
        "level named 'query'; got columns %s and index names %s"
        % (list(counterfactuals.columns), list(counterfactuals.index.names))
    )


def feature_frame(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """Select the schema's raw feature columns, in schema order.

    Parameters
    ----------
    frame
        Raw frame that may carry extra columns (``query``, ``tau``, ...).
    schema
        A :class:`lapace_plugin.schema.FeatureSchema`.

    Returns
    -------
    pandas.DataFrame
        ``frame[schema.features]``.
    """
    features = list(schema.features)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(
            "column(s) %s are missing from the frame; expected the schema's features %s"
            % (missing, features)
        )
    return frame[features]


def _model_input(counterfactuals: pd.DataFrame, schema: Any = None) -> pd.DataFrame:
    """The frame handed to a classifier: schema features if known, else all but ``query``."""
    if schema is not None:
        return feature_frame(counterfactuals, schema)
    if QUERY in counterfactuals.columns:
        return counterfactuals.drop(columns=[QUERY])
    return counterfactuals


def _positions(index: pd.Index, ids: np.ndarray, what: str) -> np.ndarray:
    """Positions of ``ids`` in a unique ``index``; raises naming the ids that are absent."""
    if not index.is_unique:
        raise ValueError("the %s index must be unique (it holds the query ids)" % what)
    pos = index.get_indexer(pd.Index(ids))
    if (pos < 0).any():
        unknown = sorted({repr(v) for v in np.asarray(ids, dtype=object)[pos < 0]})
        raise ValueError(
            "counterfactuals refer to queries that are not in the %s: %s" % (what, ", ".join(unknown[:10]))
        )
    return pos


def matched_factuals(factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> pd.DataFrame:
    """The factual row of every counterfactual row, in counterfactual row order.

    Parameters
    ----------
    factuals
        Raw factual frame indexed by query id (unique index).
    counterfactuals
        Counterfactual frame with query ids (see :func:`query_ids`).

    Returns
    -------
    pandas.DataFrame
        ``len(counterfactuals)`` rows of ``factuals``.
    """
    pos = _positions(factuals.index, query_ids(counterfactuals), "factuals")
    return factuals.iloc[pos]


def targets_per_row(
    target_class: TargetClass,
    ids: np.ndarray,
    factuals: Optional[pd.DataFrame] = None,
) -> np.ndarray:
    """Target class index for each counterfactual row.

    Parameters
    ----------
    target_class
        One class index for every query; a dict or Series keyed by query id; or a sequence with one
        entry per factual row (then ``factuals`` gives the query ids, in order).
    ids
        Query id of each counterfactual row.
    factuals
        Needed only for the sequence form.

    Returns
    -------
    numpy.ndarray
        Integer class index per row.
    """
    if target_class is None:
        raise ValueError("target_class is required: a class index, or one per query")
    if np.ndim(target_class) == 0 and not isinstance(target_class, Mapping):
        return np.full(len(ids), int(target_class), dtype=int)
    if isinstance(target_class, pd.Series):
        series = target_class
    elif isinstance(target_class, Mapping):
        series = pd.Series(list(target_class.values()), index=list(target_class.keys()))
    else:
        if factuals is None:
            raise ValueError(
                "a per-query target_class sequence needs `factuals` (one entry per factual row, in "
                "order); or pass a dict / Series keyed by query id"
            )
        values = np.asarray(target_class)
        if len(values) != len(factuals):
            raise ValueError(
                "target_class has %d entries but there are %d factuals" % (len(values), len(factuals))
            )
        series = pd.Series(values, index=factuals.index)
    pos = _positions(series.index, ids, "target_class keys")
    return np.asarray(series.to_numpy()[pos], dtype=int)


def _proba(predict_proba: Any, frame: pd.DataFrame) -> np.ndarray:
    """Call a ``predict_proba`` callable (or an object with that method) and return a 2-D array."""
    fn = getattr(predict_proba, "predict_proba", predict_proba)
    proba = np.asarray(fn(frame), dtype=float)
    if proba.ndim != 2 or proba.shape[0] != len(frame):
        raise ValueError(
            "predict_proba must return an (n, n_classes) array; got shape %s for %d rows"
            % (proba.shape, len(frame))
        )
    return proba


def predicted_class(predict_proba: Any, frame: pd.DataFrame) -> np.ndarray:
    """Class index (argmax of ``predict_proba``) of every row of ``frame``."""
    if len(frame) == 0:
        return np.zeros(0, dtype=int)
    return _proba(predict_proba, frame).argmax(axis=1)


def _nan_mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------


def _span(schema: Any, feature: str) -> float:
    lo, hi = schema.ranges[feature]
    span = float(hi) - float(lo)
    return span if span > 0 else 1.0


def feature_distances(schema: Any, a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Per-feature distances between two row-aligned raw frames.

    Parameters
    ----------
    schema
        A :class:`lapace_plugin.schema.FeatureSchema` (``ranges`` give the continuous scales).
    a, b
        Raw frames with the same number of rows, compared row by row (the index is ignored).

    Returns
    -------
    numpy.ndarray
        ``(n, d)`` array, columns in ``schema.features`` order: ``|a - b| / (hi - lo)`` for a
        continuous feature, 0 or 1 for a categorical one.
    """
    if len(a) != len(b):
        raise ValueError("feature_distances needs frames of equal length; got %d and %d" % (len(a), len(b)))
    features = list(schema.features)
    out = np.zeros((len(a), len(features)), dtype=float)
    for j, f in enumerate(features):
        if f in schema.categorical:
            va = np.asarray(a[f].to_numpy(), dtype=object)
            vb = np.asarray(b[f].to_numpy(), dtype=object)
            out[:, j] = va != vb
        else:
            va = np.asarray(a[f].to_numpy(), dtype=float)
            vb = np.asarray(b[f].to_numpy(), dtype=float)
            out[:, j] = np.abs(va - vb) / _span(schema, f)
    return out


def scaled_continuous(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    """Continuous features min-max scaled with the schema's ranges (not clipped).

    Returns
    -------
    numpy.ndarray
        ``(n, len(schema.continuous))`` float array.
    """
    cols = [
        (np.asarray(frame[f].to_numpy(), dtype=float) - float(schema.ranges[f][0])) / _span(schema, f)
        for f in schema.continuous
    ]
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def category_codes(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    """Position of each categorical value in the schema's category list.

    Returns
    -------
    numpy.ndarray
        ``(n, len(schema.categorical))`` integer array; raises on a category the schema lacks.
    """
    cols = []
    for f, cats in schema.categorical.items():
        codes = np.asarray(pd.Categorical(frame[f].to_numpy(), categories=list(cats)).codes, dtype=int)
        if (codes < 0).any():
            bad = sorted({repr(v) for v in frame[f].to_numpy()[codes < 0]})
            raise ValueError(
                "feature %r has value(s) %s that are not among its categories %s"
                % (f, ", ".join(bad[:10]), list(cats))
            )
        cols.append(codes)
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0), dtype=int)


def pairwise_distance(schema: Any, a: pd.DataFrame, b: pd.DataFrame, norm: int = 1) -> np.ndarray:
    """All pairwise norms of the per-feature distance vectors between rows of ``a`` and ``b``.

    Parameters
    ----------
    schema
        The feature schema.
    a, b
        Raw frames with ``n_a`` and ``n_b`` rows.
    norm
        1 (sum of per-feature distances) or 2 (Euclidean norm). Not divided by ``d``.

    Returns
    -------
    numpy.ndarray
        ``(n_a, n_b)`` float array.
    """
    return _pairwise_arrays(
        scaled_continuous(schema, a), category_codes(schema, a),
        scaled_continuous(schema, b), category_codes(schema, b), norm,
    )


def _pairwise_arrays(
    cont_a: np.ndarray, codes_a: np.ndarray, cont_b: np.ndarray, codes_b: np.ndarray, norm: int = 1
) -> np.ndarray:
    """Pairwise L1 / L2 norm of per-feature distances from pre-scaled continuous and codes."""
    if norm not in (1, 2):
        raise ValueError("norm must be 1 or 2, got %r" % (norm,))
    out = np.zeros((len(cont_a), len(cont_b)), dtype=float)
    if len(cont_a) == 0 or len(cont_b) == 0:
        return out
    if cont_a.shape[1]:
        out += cdist(cont_a, cont_b, "cityblock" if norm == 1 else "sqeuclidean")
    if codes_a.shape[1]:
        # categorical distances are 0/1, so their squares are themselves
        out += cdist(codes_a.astype(float), codes_b.astype(float), "hamming") * codes_a.shape[1]
    return out if norm == 1 else np.sqrt(out)


def pairwise_l1(schema: Any, a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    """Pairwise ``(1/d)``-L1 distances (the proximity / diversity distance) between rows."""
    return pairwise_distance(schema, a, b, norm=1) / len(schema.features)


# ----------------------------------------------------------------------------------------------
# Validity, proximity, sparsity
# ----------------------------------------------------------------------------------------------


def validity(
    counterfactuals: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    schema: Any = None,
) -> float:
    """Share of counterfactuals that the model assigns to their query's target class.

    Parameters
    ----------
    counterfactuals
        Raw counterfactual frame with query ids.
    predict_proba
        Classifier callable (raw DataFrame -> (n, L)), or an object with ``predict_proba``.
    target_class
        Class index, or one per query (see :func:`targets_per_row`).
    factuals
        Needed only when ``target_class`` is a plain sequence.
    schema
        If given, only ``schema.features`` are passed to the classifier; otherwise every column but
        ``query``.

    Returns
    -------
    float
        In [0, 1]; NaN when there are no counterfactuals.
    """
    ids = query_ids(counterfactuals)
    if len(ids) == 0:
        return float("nan")
    targets = targets_per_row(target_class, ids, factuals)
    pred = predicted_class(predict_proba, _model_input(counterfactuals, schema))
    return float(np.mean(pred == targets))


def _distances_to_factuals(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> np.ndarray:
    facts = matched_factuals(factuals, counterfactuals)
    return feature_distances(schema, feature_frame(facts, schema), feature_frame(counterfactuals, schema))


def proximity_l1(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * sum`` of per-feature distances to the factual.

    Returns
    -------
    float
        Lower is closer; NaN when there are no counterfactuals.
    """
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return _nan_mean(dist.sum(axis=1) / dist.shape[1])


def proximity_l2(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean over counterfactuals of ``(1/d) * ||per-feature distances||_2`` to the factual.

    Returns
    -------
    float
        Lower is closer; NaN when there are no counterfactuals.
    """
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return _nan_mean(np.sqrt((dist ** 2).sum(axis=1)) / dist.shape[1])


def sparsity(schema: Any, factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Mean share of features that a counterfactual changes (distance above :data:`CHANGE_TOL`).

    Returns
    -------
    float
        In [0, 1], lower is sparser; NaN when there are no counterfactuals.
    """
    dist = _distances_to_factuals(schema, factuals, counterfactuals)
    return _nan_mean((dist > CHANGE_TOL).mean(axis=1))


# ----------------------------------------------------------------------------------------------
# Plausibility: LOF and yNN
# ----------------------------------------------------------------------------------------------


class LOFScore(NamedTuple):
    """Median and mean of ``-score_samples`` of the counterfactuals (about 1 = inlier)."""

    median: float
    mean: float


def _encode(schema: Any, frame: pd.DataFrame) -> np.ndarray:
    from lapace_plugin.encoding import TabularEncoder

    return np.asarray(TabularEncoder(schema).encode(feature_frame(frame, schema)), dtype=float)


def _training_predictions(
    X_train: pd.DataFrame, predict_proba: PredictProba, schema: Any, train_pred: Optional[np.ndarray]
) -> np.ndarray:
    if train_pred is not None:
        train_pred = np.asarray(train_pred, dtype=int)
        if len(train_pred) != len(X_train):
            raise ValueError("train_pred has %d entries for %d training rows" % (len(train_pred), len(X_train)))
        return train_pred
    return predicted_class(predict_proba, feature_frame(X_train, schema))


def lof_scores(
    schema: Any,
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    n_neighbors: int = 10,
    train_pred: Optional[np.ndarray] = None,
    deduplicate: bool = True,
) -> np.ndarray:
    """LOF outlier score (``-score_samples``) of each counterfactual; see :func:`plausibility_lof`.

    Returns
    -------
    numpy.ndarray
        One score per counterfactual row.
    """
    from sklearn.neighbors import LocalOutlierFactor

    ids = query_ids(counterfactuals)
    scores = np.full(len(ids), np.nan)
    if len(ids) == 0:
        return scores
    targets = targets_per_row(target_class, ids, factuals)
    train_enc = _encode(schema, X_train)
    train_pred = _training_predictions(X_train, predict_proba, schema, train_pred)
    cf_enc = _encode(schema, counterfactuals)
    for t in np.unique(targets):
        reference = train_enc[train_pred == t]
        if deduplicate:
            reference = np.unique(reference, axis=0)
        if len(reference) < 2:
            raise ValueError(
                "plausibility_lof needs at least 2 distinct training rows predicted as class %d; got %d"
                % (t, len(reference))
            )
        lof = LocalOutlierFactor(n_neighbors=min(n_neighbors, len(reference) - 1), novelty=True)
        lof.fit(reference)
        rows = targets == t
        scores[rows] = -lof.score_samples(cf_enc[rows])
    return scores


def plausibility_lof(
    schema: Any,
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    n_neighbors: int = 10,
    train_pred: Optional[np.ndarray] = None,
    deduplicate: bool = True,
) -> LOFScore:
    """Local outlier factor of the counterfactuals among training rows of their target class.

    ``LocalOutlierFactor(n_neighbors=10, novelty=True)`` is fitted, per target class, on the
    **de-duplicated** encoded training rows that the model assigns to that class; a
    counterfactual's score is ``-score_samples`` (about 1 for an inlier, larger is worse).

    Parameters
    ----------
    schema
        The feature schema (the encoder is ``TabularEncoder(schema)``).
    counterfactuals
        Raw counterfactual frame with query ids.
    X_train
        Raw training frame.
    predict_proba
        The classifier.
    target_class
        Class index, or one per query.
    factuals
        Needed only when ``target_class`` is a plain sequence.
    n_neighbors
        LOF neighbourhood size (capped at the number of reference rows minus one).
    train_pred
        The model's class index for every training row, to skip recomputing it.
    deduplicate
        Drop duplicate training rows before fitting (keep True: duplicates make LOF explode).

    Returns
    -------
    LOFScore
        ``(median, mean)``; NaN for both when there are no counterfactuals.
    """
    scores = lof_scores(
        schema, counterfactuals, X_train, predict_proba, target_class,
        factuals=factuals, n_neighbors=n_neighbors, train_pred=train_pred, deduplicate=deduplicate,
    )
    if len(scores) == 0:
        return LOFScore(float("nan"), float("nan"))
    return LOFScore(float(np.median(scores)), float(np.mean(scores)))


def ynn(
    schema: Any,
    counterfactuals: pd.DataFrame,
    X_train: pd.DataFrame,
    predict_proba: PredictProba,
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    k: int = 5,
    train_pred: Optional[np.ndarray] = None,
) -> float:
    """Mean share of a counterfactual's ``k`` nearest training rows that the model assigns to the target.

    Neighbours are found by Euclidean distance in the encoded space (``TabularEncoder``), among
    all training rows.

    Parameters
    ----------
    schema, counterfactuals, X_train, predict_proba, target_class, factuals, train_pred
        As in :func:`plausibility_lof`.
    k
        Number of neighbours (capped at the number of training rows).

    Returns
    -------
    float
        In [0, 1], higher is better; NaN when there are no counterfactuals.
    """
    from sklearn.neighbors import NearestNeighbors

    ids = query_ids(counterfactuals)
    if len(ids) == 0:
        return float("nan")
    targets = targets_per_row(target_class, ids, factuals)
    train_enc = _encode(schema, X_train)
    train_pred = _training_predictions(X_train, predict_proba, schema, train_pred)
    nn = NearestNeighbors(n_neighbors=min(k, len(train_enc))).fit(train_enc)
    neighbours = nn.kneighbors(_encode(schema, counterfactuals), return_distance=False)
    return float(np.mean(train_pred[neighbours] == targets[:, None]))


# ----------------------------------------------------------------------------------------------
# Diversity and coverage
# ----------------------------------------------------------------------------------------------


def _groups(counterfactuals: pd.DataFrame) -> Dict[Any, np.ndarray]:
    """Row positions of each query's counterfactuals, in order of first appearance."""
    ids = query_ids(counterfactuals)
    codes, uniques = pd.factorize(pd.Index(ids))
    return {uniques[c]: np.flatnonzero(codes == c) for c in range(len(uniques))}


def diversity(schema: Any, counterfactuals: pd.DataFrame) -> float:
    """Mean pairwise ``(1/d)``-L1 distance among each query's counterfactuals.

    Averaged over the queries that have at least two counterfactuals.

    Returns
    -------
    float
        Higher is more diverse; NaN when no query has two counterfactuals.
    """
    feats = feature_frame(counterfactuals, schema)
    per_query = []
    for rows in _groups(counterfactuals).values():
        if len(rows) < 2:
            continue
        part = feats.iloc[rows]
        dist = pairwise_l1(schema, part, part)
        upper = np.triu_indices(len(rows), k=1)
        per_query.append(dist[upper].mean())
    return _nan_mean(np.asarray(per_query))


def coverage(factuals: pd.DataFrame, counterfactuals: pd.DataFrame) -> float:
    """Share of queries (rows of ``factuals``) with at least one counterfactual.

    Returns
    -------
    float
        In [0, 1]; NaN when there are no factuals.
    """
    if len(factuals) == 0:
        return float("nan")
    found = factuals.index.isin(pd.Index(query_ids(counterfactuals)))
    return float(np.mean(found))


def runtime_per_query(seconds: float, n_queries: int) -> float:
    """Wall seconds per query: ``seconds / n_queries``."""
    if n_queries <= 0:
        raise ValueError("n_queries must be positive, got %r" % (n_queries,))
    return float(seconds) / n_queries


# ----------------------------------------------------------------------------------------------
# Input robustness
# ----------------------------------------------------------------------------------------------


def perturb_factuals(
    schema: Any, factuals: pd.DataFrame, sigma: float = 0.1, random_state: Any = None
) -> pd.DataFrame:
    """Add ``N(0, sigma^2)`` noise (scaled units) to the mutable continuous features.

    Each perturbed value is clipped to [0, 1] in scaled units, mapped back to raw units and
    rounded for integer features; immutable and categorical features are left untouched.

    Parameters
    ----------
    schema
        The feature schema.
    factuals
        Raw factual frame; its index is kept.
    sigma
        Standard deviation of the noise in scaled units.
    random_state
        Seed or ``numpy.random.RandomState``.

    Returns
    -------
    pandas.DataFrame
        A perturbed copy of ``factuals``.
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    immutable = set(schema.immutable)
    mutable = [f for f in schema.continuous if f not in immutable]
    out = factuals.copy()
    noise = rng.normal(0.0, sigma, size=(len(factuals), len(mutable)))
    integer = set(getattr(schema, "integer", ()) or ())
    for j, f in enumerate(mutable):
        lo = float(schema.ranges[f][0])
        span = _span(schema, f)
        scaled = np.clip((np.asarray(factuals[f].to_numpy(), dtype=float) - lo) / span + noise[:, j], 0.0, 1.0)
        values = lo + scaled * span
        if f in integer:
            values = np.round(values)
        if pd.api.types.is_integer_dtype(factuals[f].dtype):
            values = np.round(values).astype(factuals[f].dtype)
        out[f] = values
    return out


def set_distance(schema: Any, s: pd.DataFrame, s_prime: pd.DataFrame) -> float:
    """Symmetric set distance between two sets of counterfactuals.

    ``(1/2|S|) sum_s min_s' ||s - s'||_2 + (1/2|S'|) sum_s' min_s ||s - s'||_2``, where
    ``||.||_2`` is the Euclidean norm of the per-feature distance vector.

    Returns
    -------
    float
        0 when the two sets are equal; NaN when either is empty.
    """
    if len(s) == 0 or len(s_prime) == 0:
        return float("nan")
    dist = pairwise_distance(schema, feature_frame(s, schema), feature_frame(s_prime, schema), norm=2)
    return float(0.5 * dist.min(axis=1).mean() + 0.5 * dist.min(axis=0).mean())


def input_robustness_per_query(
    generate: Callable[[pd.DataFrame], pd.DataFrame],
    factuals: pd.DataFrame,
    schema: Any,
    counterfactuals: Optional[pd.DataFrame] = None,
    sigma: float = 0.1,
    random_state: Any = 0,
) -> pd.Series:
    """Set distance between each query's counterfactuals and those of its perturbed copy.

    Parameters
    ----------
    generate
        Callable raw query frame -> counterfactual frame with query ids equal to the query frame's
        index labels (e.g. ``lambda X: explainer.explain(X, ...).counterfactuals``).
    factuals
        Raw factual frame (unique index).
    schema
        The feature schema.
    counterfactuals
        The counterfactuals already generated for ``factuals``; generated when omitted.
    sigma
        Noise standard deviation in scaled units (see :func:`perturb_factuals`).
    random_state
        Seed of the perturbation.

    Returns
    -------
    pandas.Series
        Indexed like ``factuals``; NaN for a query without counterfactuals before or after.
    """
    if counterfactuals is None:
        counterfactuals = generate(factuals)
    perturbed = perturb_factuals(schema, factuals, sigma=sigma, random_state=random_state)
    regenerated = generate(perturbed)
    before = _groups(counterfactuals)
    after = _groups(regenerated)
    values = []
    for q in factuals.index:
        if q in before and q in after:
            values.append(set_distance(
                schema, counterfactuals.iloc[before[q]], regenerated.iloc[after[q]]
            ))
        else:
            values.append(float("nan"))
    return pd.Series(values, index=factuals.index, dtype=float, name="input_robustness")


def input_robustness(
    generate: Callable[[pd.DataFrame], pd.DataFrame],
    factuals: pd.DataFrame,
    schema: Any,
    counterfactuals: Optional[pd.DataFrame] = None,
    sigma: float = 0.1,
    random_state: Any = 0,
) -> float:
    """Mean set distance between counterfactuals of factuals and of their perturbed copies.

    The perturbation adds ``N(0, sigma^2)`` (scaled units, clipped to [0, 1]) to every mutable
    continuous feature; the counterfactual sets are compared with :func:`set_distance`.  See
    :func:`input_robustness_per_query` for the parameters.

    Returns
    -------
    float
        0 is perfect; the mean over queries with counterfactuals before and after (NaN if none).
    """
    per_query = input_robustness_per_query(
        generate, factuals, schema, counterfactuals=counterfactuals, sigma=sigma, random_state=random_state
    )
    per_query = per_query.dropna()
    return float(per_query.mean()) if len(per_query) else float("nan")


# ----------------------------------------------------------------------------------------------
# Model-change robustness
# ----------------------------------------------------------------------------------------------


def retrain_models(
    make_model: Any,
    X: pd.DataFrame,
    y: Any,
    n: int = 10,
    leave_out: float = 0.01,
    random_state: Any = None,
) -> List[Any]:
    """Retrain a model family ``n`` times with new seeds on perturbed training sets.

    The first ``ceil(n/2)`` models are fitted on bootstrap resamples of ``(X, y)``, the others on
    ``(X, y)`` with a random ``leave_out`` share of the rows (at least one) left out.

    Parameters
    ----------
    make_model
        Either a callable ``seed -> unfitted estimator`` or an unfitted sklearn estimator
        template (cloned, with ``random_state`` set when it has that parameter).
    X
        Training inputs in whatever form the estimator's ``fit`` takes (DataFrame or array).
    y
        Training labels.
    n
        Number of retrained models.
    leave_out
        Share of rows left out by the second half.
    random_state
        Seed of the resampling and of the models' seeds.

    Returns
    -------
    list
        ``n`` fitted estimators.
    """
    rng = random_state if isinstance(random_state, np.random.RandomState) else np.random.RandomState(random_state)
    n_rows = len(X)
    n_boot = (n + 1) // 2
    n_out = max(1, int(round(leave_out * n_rows)))
    models = []
    for i in range(n):
        seed = int(rng.randint(0, 2 ** 31 - 1))
        if i < n_boot:
            rows = rng.randint(0, n_rows, size=n_rows)
        else:
            rows = np.sort(rng.choice(n_rows, size=n_rows - n_out, replace=False))
        model = _new_model(make_model, seed)
        model.fit(_take(X, rows), _take(y, rows))
        models.append(model)
    return models


def _new_model(make_model: Any, seed: int) -> Any:
    if hasattr(make_model, "fit") and hasattr(make_model, "get_params"):
        from sklearn.base import clone

        model = clone(make_model)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
        return model
    return make_model(seed)


def _take(data: Any, rows: np.ndarray) -> Any:
    if isinstance(data, (pd.DataFrame, pd.Series)):
        return data.iloc[rows]
    return np.asarray(data)[rows]


def _validity_matrix(
    counterfactuals: pd.DataFrame,
    retrained_models: Sequence[Any],
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame],
    schema: Any,
) -> np.ndarray:
    """``(n_counterfactuals, R)`` boolean: is counterfactual i valid under retrained model r."""
    ids = query_ids(counterfactuals)
    if len(retrained_models) == 0:
        raise ValueError("model robustness needs at least one retrained model")
    targets = targets_per_row(target_class, ids, factuals)
    frame = _model_input(counterfactuals, schema)
    out = np.zeros((len(ids), len(retrained_models)), dtype=bool)
    if len(ids) == 0:
        return out
    for r, model in enumerate(retrained_models):
        out[:, r] = predicted_class(model, frame) == targets
    return out


def model_robustness(
    counterfactuals: pd.DataFrame,
    retrained_models: Sequence[Any],
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    schema: Any = None,
) -> float:
    """Share of (counterfactual, retrained model) pairs where the counterfactual stays valid.

    Parameters
    ----------
    counterfactuals
        Raw counterfactual frame with query ids.
    retrained_models
        Fitted models (objects with ``predict_proba``) or ``predict_proba`` callables, e.g. from
        :func:`retrain_models`; their columns must be in the original model's class order.
    target_class, factuals, schema
        As in :func:`validity`.

    Returns
    -------
    float
        In [0, 1]; NaN when there are no counterfactuals.
    """
    valid = _validity_matrix(counterfactuals, retrained_models, target_class, factuals, schema)
    return float(valid.mean()) if valid.size else float("nan")


def model_robustness_all(
    counterfactuals: pd.DataFrame,
    retrained_models: Sequence[Any],
    target_class: TargetClass,
    factuals: Optional[pd.DataFrame] = None,
    schema: Any = None,
) -> float:
    """Share of counterfactuals valid under every retrained model (see :func:`model_robustness`).

    Returns
    -------
    float
        In [0, 1]; NaN when there are no counterfactuals.
    """
    valid = _validity_matrix(counterfactuals, retrained_models, target_class, factuals, schema)
    return float(valid.all(axis=1).mean()) if len(valid) else float("nan")


# ----------------------------------------------------------------------------------------------
# Constraint violations
# ----------------------------------------------------------------------------------------------


_SPEC_KEYS = ("immutable", "increase", "decrease", "ranges", "categories")


def _constraint_spec(constraints: Any, schema: Any) -> Dict[str, Any]:
    """Normalise a FeatureSchema, a dict or a Constraints-like object to one plain dict."""
    if constraints is None:
        raise ValueError("constraints is required: a FeatureSchema, 'schema', a Constraints or a dict")
    if isinstance(constraints, str):
        if constraints != "schema" or schema is None:
            raise ValueError("constraints='schema' needs the schema argument; got %r" % (constraints,))
        constraints = schema
    if hasattr(constraints, "features") and hasattr(constraints, "monotone"):  # a FeatureSchema
        monotone = dict(constraints.monotone or {})
        return {
            "immutable": list(constraints.immutable),
            "increase": [f for f, d in monotone.items() if d == "increase"],
            "decrease": [f for f, d in monotone.items() if d == "decrease"],
            "ranges": {},
            "categories": {},
        }
    if not isinstance(constraints, Mapping):  # a lapace_plugin.constraints.Constraints or alike
        constraints = {k: getattr(constraints, k) for k in _SPEC_KEYS if hasattr(constraints, k)}
    unknown = set(constraints) - set(_SPEC_KEYS)
    if unknown:
        raise ValueError(
            "unknown constraint kind(s) %s; expected immutable, increase, decrease, ranges, categories"
            % sorted(unknown)
        )
    return {
        "immutable": list(constraints.get("immutable") or ()),
        "increase": list(constraints.get("increase") or ()),
        "decrease": list(constraints.get("decrease") or ()),
        "ranges": dict(constraints.get("ranges") or {}),
        "categories": dict(constraints.get("categories") or {}),
    }


def _ordinal(values: pd.Series, feature: str, schema: Any) -> np.ndarray:
    """Numeric values, or category positions when the schema lists ``feature`` as categorical."""
    if schema is not None and feature in schema.categorical:
        return pd.Categorical(values.to_numpy(), categories=list(schema.categorical[feature])).codes.astype(float)
    return np.asarray(values.to_numpy(), dtype=float)


def _tolerance(feature: str, schema: Any) -> float:
    if schema is not None and feature in getattr(schema, "ranges", {}):
        return CHANGE_TOL * _span(schema, feature)
    return CHANGE_TOL


def constraint_table(
    factuals: pd.DataFrame,
    counterfactuals: pd.DataFrame,
    constraints: Any,
    schema: Any = None,
) -> pd.DataFrame:
    """Which counterfactual breaks which kind of constraint.

    Parameters
    ----------
    factuals
        Raw factual frame indexed by query id.
    counterfactuals
        Raw counterfactual frame with query ids.
    constraints
        A FeatureSchema (its immutable and monotone features), the string ``"schema"`` (with
        ``schema``), a Constraints object, or a dict ``{"immutable": [...], "increase": [...],
        "decrease": [...], "ranges": {f: (lo, hi)}, "categories": {f: [...]}}``.
    schema
        Optional schema: gives continuous tolerances (:data:`CHANGE_TOL` of the range) and the
        category order used by increase / decrease on a categorical feature.

    Returns
    -------
    pandas.DataFrame
        Boolean frame, one row per counterfactual (same index), one column per kind in
        :data:`CONSTRAINT_KINDS`.
    """
    spec = _constraint_spec(constraints, schema)
    if schema is None and hasattr(constraints, "features"):
        schema = constraints
    facts = matched_factuals(factuals, counterfactuals)
    n = len(counterfactuals)
    table = {kind: np.zeros(n, dtype=bool) for kind in CONSTRAINT_KINDS}
    for f in spec["immutable"]:
        a, b = facts[f], counterfactuals[f]
        if (schema is not None and f in schema.categorical) or not pd.api.types.is_numeric_dtype(a.dtype):
            table["immutable"] |= np.asarray(a.to_numpy(), dtype=object) != np.asarray(b.to_numpy(), dtype=object)
        else:
            diff = np.abs(np.asarray(a.to_numpy(), dtype=float) - np.asarray(b.to_numpy(), dtype=float))
            table["immutable"] |= diff > _tolerance(f, schema)
    for f in spec["increase"]:
        change = _ordinal(counterfactuals[f], f, schema) - _ordinal(facts[f], f, schema)
        table["increase"] |= change < -_tolerance(f, schema)
    for f in spec["decrease"]:
        change = _ordinal(counterfactuals[f], f, schema) - _ordinal(facts[f], f, schema)
        table["decrease"] |= change > _tolerance(f, schema)
    for f, (lo, hi) in spec["ranges"].items():
        values = np.asarray(counterfactuals[f].to_numpy(), dtype=float)
        tol = _tolerance(f, schema)
        lo = -np.inf if lo is None else float(lo)
        hi = np.inf if hi is None else float(hi)
        table["range"] |= (values < lo - tol) | (values > hi + tol)
    for f, allowed in spec["categories"].items():
        table["category"] |= ~pd.Series(counterfactuals[f].to_numpy()).isin(list(allowed)).to_numpy()
    return pd.DataFrame(table, index=counterfactuals.index, columns=list(CONSTRAINT_KINDS))


def constraint_violations(
    factuals: pd.DataFrame,
    counterfactuals: pd.DataFrame,
    constraints: Any,
    schema: Any = None,
) -> int:
    """Number of counterfactuals that break at least one declared constraint.

    See :func:`constraint_table` for the parameters and the per-kind breakdown.

    Returns
    -------
    int
        0 is perfect.
    """
    table = constraint_table(factuals, counterfactuals, constraints, schema=schema)
    return int(table.any(axis=1).sum())
