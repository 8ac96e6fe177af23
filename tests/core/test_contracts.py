"""Building blocks satisfy their contracts, registries build them with only the options they name, and a toy
strategy added as one file plus one registry line (toy_strategy.py) works through Lapace.explain."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import tiny

from lapace_plugin import InvalidParameterError, Lapace, contracts
from lapace_plugin.paths import PATH_KINDS, SparsePath
from lapace_plugin.refine import REFINERS
from lapace_plugin.search import SEARCHES
from lapace_plugin.strategies import STRATEGIES

needs_protocols = pytest.mark.skipif(sys.version_info < (3, 8), reason="typing.Protocol needs Python 3.8")


@needs_protocols
@pytest.mark.parametrize("registry, contract", [
    (PATH_KINDS, contracts.PathKind), (SEARCHES, contracts.Search), (REFINERS, contracts.Refiner),
])
def test_every_registered_block_satisfies_its_contract(registry, contract):
    for name in registry:
        assert isinstance(registry.build(name, margin=0.5, tolerance=0.2), contract), name


@needs_protocols
def test_every_strategy_satisfies_the_strategy_contract():
    kind, search = PATH_KINDS.build("corrected"), SEARCHES.build("grid")
    for name in STRATEGIES:
        assert isinstance(STRATEGIES.build(name, kind=kind, search=search, n_steps=3), contracts.Strategy), name


def test_options_reach_only_the_blocks_that_name_them():
    sparse = PATH_KINDS.build("sparse", margin=0.3, tolerance=0.05, unrelated=1)
    assert isinstance(sparse, SparsePath) and sparse.snapping() == (0.3, 0.05)
    assert PATH_KINDS.build("corrected", margin=0.3, tolerance=0.05).snapping() != (0.3, 0.05)


def test_a_name_is_registered_once_and_unknown_names_list_the_choices():
    with pytest.raises(InvalidParameterError, match="already registered"):
        SEARCHES.register("grid", object)
    with pytest.raises(InvalidParameterError, match="search must be one of 'grid', 'fast'"):
        SEARCHES.build("nearest")


@pytest.fixture
def toy():
    """Import toy_strategy.py (its last line registers "halfway"); afterwards forget it, so a re-import registers again."""
    import toy_strategy  # noqa: F401

    yield
    STRATEGIES.unregister("halfway")
    del sys.modules["toy_strategy"]


def test_a_toy_strategy_added_as_one_file_and_one_registry_line_explains(toy):
    explainer = Lapace(components_per_class=2, latent_dim=2, hidden=(8,), verbose=False)
    explainer.state_, explainer.predict_proba_ = tiny.state(), tiny.predict_proba  # a fit, by hand
    queries = pd.DataFrame({"income": [20.0, 30.0], "age": [30, 40], "job": ["clerk", "manager"]}, index=["p", "q"])
    result = explainer.explain(queries, strategy="halfway", revert=True)
    assert result.meta["strategy"] == "halfway" and result.coverage == 1.0
    frame = result.to_frame()
    assert (frame.loc[frame["valid"], "tau"] == 0.5).all()
    # halfway between the queries' income (20, 30) and the class-1 centroids' (70, 85); 45 is not class 1
    assert set(result.counterfactuals["income"]) == {52.5, 50.0, 57.5}
    assert frame.loc[~frame["valid"], "income"].isna().all() and (~frame["valid"]).sum() == 1
