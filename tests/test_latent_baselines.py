"""C-CHVAE and REVISE (this package's, on its own conditional VAE) on a small subset of real german credit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lapace_plugin import Constraints, datasets
from lapace_plugin.evaluation import metrics
from lapace_plugin.evaluation.baselines import CCHVAE, Baseline, Revise
from lapace_plugin.evaluation.baselines.vae import train_vae
from lapace_plugin.evaluation.models import make_classifier, split

FAST_VAE = {"steps": 600, "latent_dim": 6}


@pytest.fixture(scope="module")
def german():
    ds = datasets.load("german")
    X_train, X_test, y_train, _ = split(ds, test_size=0.2, random_state=0)
    schema = ds.schema.with_data(X_train)
    model = make_classifier(schema, "rf", random_state=0).fit(X_train, y_train)
    queries = X_test[model.predict(X_test) == 0].iloc[:12]
    return schema, X_train, model, queries


def _fitted(cls, german, **kwargs):
    schema, X_train, model, _ = german
    return cls(schema=schema, immutable="schema", vae_params=FAST_VAE, random_state=0, **kwargs).fit(X_train, model.predict_proba)


@pytest.fixture(scope="module")
def explained(german):
    """Each latent baseline fitted on its own VAE, with its counterfactuals and failures for the queries (read by
    several tests: one fit and one explain each)."""
    queries = german[3]
    out = {}
    for cls in (CCHVAE, Revise):
        method = _fitted(cls, german)
        out[cls] = method, method.explain(queries, target_class=1), dict(method.failures)
    return out


@pytest.mark.parametrize("cls", [CCHVAE, Revise])
def test_latent_baselines_return_valid_rows_that_keep_the_immutables(cls, german, explained):
    schema, _, model, queries = german
    _, cfs, failures = explained[cls]
    assert len(cfs) + len(failures) >= len(queries) and len(cfs) >= len(queries) // 2
    assert list(cfs.columns) == schema.features and cfs.index.names == ["query", "rank"]
    factuals = queries.loc[cfs.index.get_level_values("query")]
    assert (model.predict(cfs) == 1).all()
    assert not Constraints(immutable=schema.immutable).broken(factuals, cfs, schema).any()
    assert metrics.constraint_violations(schema, factuals, cfs, {"immutable": schema.immutable}) == 0
    for f, cats in schema.categorical.items():
        assert cfs[f].isin(cats).all()
    for f in schema.continuous:
        low, high = schema.ranges[f]
        assert cfs[f].between(low, high).all()


@pytest.mark.parametrize("cls", [CCHVAE, Revise])
def test_latent_baselines_are_reproducible_with_a_fixed_random_state(cls, german):
    _, _, _, queries = german
    first = _fitted(cls, german).explain(queries.iloc[:5], target_class=1)
    again = _fitted(cls, german).explain(queries.iloc[:5], target_class=1)
    pd.testing.assert_frame_equal(first, again)


def test_cchvae_picks_the_nearest_valid_point_of_the_first_successful_layer(german):
    schema, _, model, queries = german
    method = _fitted(CCHVAE, german, n_samples=100)
    near = method.explain(queries.iloc[:4], target_class=1, n_counterfactuals=3)
    for q in near.index.get_level_values("query").unique():
        rows = near.xs(q, level="query")
        dist = metrics.feature_distances(schema, queries.loc[[q] * len(rows)], rows).mean(axis=1)
        assert np.all(np.diff(dist) >= -1e-12)  # ranked by proximity


def test_revise_without_steps_fails_queries_by_reason(german):
    _, _, _, queries = german
    method = _fitted(Revise, german, max_steps=0)
    cfs = method.explain(queries, target_class=1)
    assert len(cfs) + len(method.failures) == len(queries)
    assert all("after 0 gradient steps" in reason for reason in method.failures.values())


def test_a_shared_vae_gives_each_latent_baseline_the_counterfactuals_of_the_vae_it_trains_itself(german, explained):
    # the study trains one VAE per dataset and seed for C-CHVAE and REVISE: it must be the one each trains alone
    schema, X_train, model, queries = german
    fitted = Baseline(schema=schema, immutable="schema").fit(X_train, model.predict_proba)
    vae = train_vae(fitted, FAST_VAE, random_state=0)
    assert vae.fit_time_ > 0
    for cls in (CCHVAE, Revise):
        own, own_cfs, _ = explained[cls]
        shared = _fitted(cls, german, vae=vae)
        assert shared.vae_ is vae
        for a, b in zip(own.vae_.decoder_net_.parameters(), vae.decoder_net_.parameters()):
            assert torch.equal(a, b)
        pd.testing.assert_frame_equal(shared.explain(queries, target_class=1), own_cfs)
