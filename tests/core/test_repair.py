"""Which constrained points get gradient repair (``LatentSpace.realise``): only those whose analytic projection leaves
an implausible row; without the plausibility filter, every point that breaks a constraint (the behaviour before).
A point leaves the repair as soon as it no longer needs it (``latent.REPAIR_CHECK``); each point's steps are its own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lapace_plugin.constraints import Constraints, EncodedConstraints
from lapace_plugin.encoding import TabularEncoder
from lapace_plugin.fitted import FittedState
from lapace_plugin.latent import REPAIR_CHECK, LatentSpace, repair
from lapace_plugin.lgmvae import LGMVAE
from lapace_plugin.schema import FeatureSchema
from lapace_plugin.support import PairSupport

SCHEMA = FeatureSchema(
    continuous=["income"], categorical={"job": ["clerk", "manager"], "sex": ["f", "m"]}, ranges={"income": (0.0, 100.0)},
    order=["income", "job", "sex"],
)
# no woman is a manager: (job=manager, sex=f) is a pair no training row holds
TRAIN = pd.DataFrame({"income": [10.0, 30.0, 50.0, 70.0, 90.0], "job": ["clerk", "clerk", "manager", "clerk", "manager"],
                      "sex": ["f", "f", "m", "m", "m"]})


def space(min_pair_count: int) -> LatentSpace:
    encoder = TabularEncoder(SCHEMA, typed=True)
    torch.manual_seed(0)
    model = LGMVAE(encoder.layout, 2, 2, latent_dim=3, hidden=(16,))
    state = FittedState(SCHEMA, encoder, [0, 1], model, torch.device("cpu"), PairSupport.fit(SCHEMA, TRAIN, masses=True))
    return LatentSpace(state, lambda frame: np.tile([0.5, 0.5], (len(frame), 1)), min_pair_count, settled=False)


def case(min_pair_count: int):
    s = space(min_pair_count)
    z = np.random.RandomState(0).standard_normal((400, 3)).astype(np.float32) * 3
    factual = s.encoder.encode(pd.DataFrame({"income": [40.0], "job": ["clerk"], "sex": ["f"]}))
    factuals = np.repeat(factual, len(z), 0)
    compiled = EncodedConstraints(Constraints(immutable=["sex"]), s.encoder)
    return s, z, factuals, compiled


def test_gradient_repair_runs_only_where_the_projection_is_implausible():
    s, z, factuals, compiled = case(min_pair_count=1)
    points, broken = s.realise(z, factuals, compiled)
    projected = compiled.project(s.decode(z), factuals)
    implausible = s.rare(projected, factuals)
    gradient = compiled.project(repair(s.model, z, factuals, compiled, s.device), factuals)
    assert broken.any() and (broken & implausible).any() and (broken & ~implausible).any()  # both kinds occur
    assert not compiled.needs_repair(points, factuals).any()  # every row within the constraints
    plain = ~(broken & implausible)
    assert np.array_equal(points[plain], projected[plain])  # projection alone: no gradient steps
    need = broken & implausible
    assert not np.allclose(points[need], projected[need])  # gradient steps, then the projection
    every_step = np.isclose(points[need], gradient[need], atol=1e-6).all(1)
    assert every_step.any() and not every_step.all()  # some needed every step, some left early


def test_a_point_leaves_the_repair_when_it_no_longer_needs_it():
    s, z, factuals, compiled = case(min_pair_count=0)
    full = repair(s.model, z, factuals, compiled, s.device)
    stays = np.arange(len(z)) % 2 == 0  # every other point always needs more; the rest are done at the first check
    early = repair(s.model, z, factuals, compiled, s.device, needs=lambda arr, rows: stays[rows])
    after_check = repair(s.model, z, factuals, compiled, s.device, steps=REPAIR_CHECK)
    assert np.allclose(early[stays], full[stays], atol=1e-6)
    assert np.allclose(early[~stays], after_check[~stays], atol=1e-6)
    assert not np.allclose(early[~stays], full[~stays], atol=1e-6)


def test_without_the_plausibility_filter_every_broken_point_is_repaired_as_before():
    s, z, factuals, compiled = case(min_pair_count=0)
    points, broken = s.realise(z, factuals, compiled)
    decoded = s.decode(z)
    still = lambda arr, rows: compiled.needs_repair(s.encoder.snap(arr), factuals[broken][rows])  # noqa: E731
    decoded[broken] = repair(s.model, z[broken], factuals[broken], compiled, s.device, needs=still)
    assert np.allclose(points, compiled.project(decoded, factuals), atol=1e-6)


def test_projection_reuses_a_snap_the_caller_has_unless_a_category_is_forbidden():
    s, z, factuals, compiled = case(min_pair_count=1)
    decoded = s.decode(z)
    snapped = s.encoder.snap(decoded)
    kept = snapped.copy()
    assert np.array_equal(compiled.project(decoded, factuals, snapped=snapped), compiled.project(decoded, factuals))
    assert np.array_equal(snapped, kept)  # the caller's snap is not overwritten
    no_managers = EncodedConstraints(Constraints(categories={"job": ["clerk"]}), s.encoder)
    manager = s.encoder.column("job").start + 1
    assert (snapped[:, manager] == 1).any()  # the plain snap picks the forbidden category somewhere ...
    projected = no_managers.project(decoded, factuals, snapped=snapped)
    assert not (projected[:, manager] == 1).any()  # ... the projection never does
    assert np.array_equal(projected, no_managers.project(decoded, factuals))
