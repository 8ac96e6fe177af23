"""The one table of ``Lapace``'s parameters: defaults, rules and documentation.

Modelled on scikit-learn's ``_parameter_constraints``: each parameter has a default and a rule that checks a value
and names the parameter in its error. The table feeds ``Lapace``'s validation and ``get_params``, persistence and the
adapters' defaults (CARLA's hyperparameters), so a new parameter is one line here.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Dict, NamedTuple, Optional, Sequence

import numpy as np

from .errors import InvalidParameterError
from .paths import PATH_KINDS
from .registry import Registry
from .schema import FeatureSchema
from .search import SEARCHES


class Rule:
    """Checks one parameter's value; ``check`` returns the value as stored or raises naming the parameter."""

    def check(self, name: str, value: Any) -> Any:
        raise NotImplementedError


class Integer(Rule):
    """An integer (not a bool, not a float such as 2.7 or 3.0, not a string) in ``[low, high]``."""

    def __init__(self, low: int, high: Optional[int] = None) -> None:
        self.low, self.high = low, high

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise InvalidParameterError("%s must be an integer, got %r (%s)" % (name, value, type(value).__name__))
        if value < self.low or (self.high is not None and value > self.high):
            bounds = "at least %d" % self.low if self.high is None else "between %d and %d" % (self.low, self.high)
            raise InvalidParameterError("%s must be %s, got %r" % (name, bounds, value))
        return int(value)


class Real(Rule):
    """A finite real number in ``[low, high)`` (``high_open``) or ``[low, high]``; ``low_open`` excludes ``low``."""

    def __init__(self, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise InvalidParameterError("%s must be a number, got %r (%s)" % (name, value, type(value).__name__))
        v = float(value)
        low_ok = v > self.low if self.low_open else v >= self.low
        high_ok = v < self.high if self.high_open else v <= self.high
        if not (math.isfinite(v) and low_ok and high_ok):
            raise InvalidParameterError(
                "%s must be in %s%g, %g%s, got %r"
                % (name, "(" if self.low_open else "[", self.low, self.high, ")" if self.high_open else "]", value)
            )
        return value


class Options(Rule):
    """One of a registry's names, or of a fixed sequence of names."""

    def __init__(self, choices: Any, kind: str = "") -> None:
        self.registry = choices if isinstance(choices, Registry) else Registry(kind, *[(c, c) for c in choices])

    def check(self, name: str, value: Any) -> Any:
        return self.registry.check(value)


class Flag(Rule):
    """``True`` or ``False`` (numpy booleans too; not 0, 1 or strings)."""

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidParameterError("%s must be True or False, got %r" % (name, value))
        return bool(value)


class Nullable(Rule):
    """``None`` or a value the inner rule accepts."""

    def __init__(self, inner: Rule) -> None:
        self.inner = inner

    def check(self, name: str, value: Any) -> Any:
        return None if value is None else self.inner.check(name, value)


class Widths(Rule):
    """A non-empty sequence of layer widths, each an integer in ``[1, high]``."""

    def __init__(self, high: int, max_layers: int) -> None:
        self.width, self.max_layers = Integer(1, high), max_layers

    def check(self, name: str, value: Any) -> Any:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not 1 <= len(value) <= self.max_layers:
            raise InvalidParameterError("%s must be a sequence of 1 to %d layer widths, got %r" % (name, self.max_layers, value))
        for v in value:
            self.width.check(name + " width", v)
        return value


class Schema(Rule):
    """``None`` (inferred at fit) or a :class:`~lapace_plugin.schema.FeatureSchema`."""

    def check(self, name: str, value: Any) -> Any:
        if value is not None and not isinstance(value, FeatureSchema):
            raise InvalidParameterError("%s must be a FeatureSchema or None, got %s" % (name, type(value).__name__))
        return value


class Device(Rule):
    """A torch device: a name such as ``"cpu"`` or ``"cuda:0"``, or a ``torch.device``."""

    def check(self, name: str, value: Any) -> Any:
        import torch

        try:
            torch.device(value)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise InvalidParameterError("%s must be a torch device such as 'cpu' or 'cuda', got %r (%s)" % (name, value, exc)) from None
        return value


class Param(NamedTuple):
    """One parameter: its default, its rule, whether ``explain`` may override it per call, and its documentation."""

    default: Any
    rule: Rule
    doc: str
    per_call: bool = False


MAX_SAMPLE = 1_000_000  # rows one Lapace.sample call may ask for
MAX_WIDTH = 4096  # widest hidden layer or latent space accepted (a saved file asking for more is refused before allocating)

PARAMETERS: Dict[str, Param] = {
    "schema": Param(None, Schema(), "Feature schema; inferred from the training frame when ``None``."),
    "components_per_class": Param(5, Integer(1, 100), "``m``, Gaussian components (and so counterfactuals) per class."),
    "latent_dim": Param(16, Integer(1, MAX_WIDTH), "Latent size of the L-GMVAE."),
    "hidden": Param((128, 128), Widths(MAX_WIDTH, 8), "Hidden layer widths of the L-GMVAE's encoder and decoder."),
    "epochs": Param(None, Nullable(Integer(1, 100000)),
                    "Maximum training epochs; ``None`` chooses from the data size (about 1,000 optimiser steps, :data:`lapace_plugin.training.STEP_BUDGET`)."),
    "batch_size": Param(256, Integer(1, 10**7), "Training batch size (Adam)."),
    "learning_rate": Param(1e-3, Real(0.0, 10.0, low_open=True), "Adam's learning rate."),
    "continuous_weight": Param(10.0, Real(0.0, 1e6), "Weight of the continuous reconstruction term."),
    "kl_weight": Param(1.0, Real(0.0, 1e6), "Weight of the KL terms of the ELBO."),
    "decoder": Param("typed", Options(("typed", "paper"), kind="decoder"),
                     "``\"typed\"``: a decoder likelihood per feature type (hurdle heads for point-mass features, "
                     "cumulative-link heads for ordinal ones, discrete features at observed values; "
                     ":class:`lapace_plugin.lgmvae.LGMVAE`); ``\"paper\"``: the paper's decoder (squared error on scaled "
                     "numbers, cross-entropy per one-hot group), for faithful comparisons."),
    "min_pair_count": Param(2, Integer(0, 10**9),
                            "Plausibility filter: every pair of a counterfactual's categorical, ordinal and point-mass "
                            "states (:mod:`lapace_plugin.support`) must be held by at least this many training rows, "
                            "unless the query itself holds it; 0 turns the filter off.", per_call=True),
    "consistency": Param(True, Flag(), "Learned consistency check: a counterfactual whose numbers the L-GMVAE finds less "
                         "likely than 99% of held-out real rows of its class is rejected (:mod:`lapace_plugin.consistency`).",
                         per_call=True),
    "neighbours": Param(5000, Integer(0, 10**7),
                        "Training rows kept per component as the ends of ``path=\"neighbour\"`` (a seeded sample when "
                        "there are more); a saved explainer then holds them. 0 keeps none."),
    "n_steps": Param(20, Integer(1, 10000),
                     "Path resolution: ``n_steps + 1`` points from the input's latent point (tau 0) to a centroid (tau 1).",
                     per_call=True),
    "path": Param("corrected", Options(PATH_KINDS), "How latent points become rows (:mod:`lapace_plugin.paths`).",
                  per_call=True),
    "search": Param("grid", Options(SEARCHES), "How the first valid point of a path is found (:mod:`lapace_plugin.search`).",
                    per_call=True),
    "sparse_margin": Param(0.6, Real(0.0, 1.0, high_open=True), "``path=\"sparse\"``: probability margin at tau 0."),
    "sparse_tolerance": Param(0.1, Real(0.0, 1.0, high_open=True), "``path=\"sparse\"``: scaled-unit tolerance at tau 0."),
    "revert": Param(False, Flag(), "Revert each counterfactual's unneeded changes (:mod:`lapace_plugin.revert`).",
                    per_call=True),
    "diverse": Param(False, Flag(),
                     "Options that differ in which features they change: several valid points per path, reverted "
                     "preferring to give back features other options change, chosen for distinct changed-feature sets "
                     "(:mod:`lapace_plugin.options`); implies ``revert``.", per_call=True),
    "max_per_feature": Param(None, Nullable(Integer(1, 10**6)),
                             "``diverse=True``: the most options of one query that change the same feature (``None``: no "
                             "cap). A person whose only lever is one feature then gets that many variants of it, not "
                             "``n_counterfactuals``, and the shortfall names the feature.", per_call=True),
    "max_lof": Param(None, Nullable(Real(0.0, 1e6, low_open=True)),
                     "``revert`` / ``diverse``: give a change back only while the plan's local outlier factor among the "
                     "target class's kept training rows (10 neighbours) stays at most this, so that reverting never leaves "
                     "a plan unlike every real row of the class (about 1: as typical as its neighbours; "
                     ":mod:`lapace_plugin.typical`). ``None``: no such check.", per_call=True),
    "distinct": Param(True, Flag(),
                      "When a path's first valid point repeats an option another path of the query gave (the same row, "
                      "or within :data:`lapace_plugin.selection.SAME_OPTION` of it), use its next valid point that is a "
                      "new option (``search=\"grid\"``); ``False`` keeps the paper's first points, and a path repeating "
                      "a row gives nothing.", per_call=True),
    "min_probability": Param(0.6, Real(0.0, 1.0),
                             "``strategy=\"robust\"``: the target-class probability each counterfactual must reach "
                             "(:mod:`lapace_plugin.robust`); refiners keep it.", per_call=True),
    "max_points": Param(100_000, Integer(1, 10**9),
                        "Most path points decoded and classified at once: ``explain`` splits larger batches into chunks of "
                        "queries (identical results, bounded memory: about 2 KB per point on adult).", per_call=True),
    "random_state": Param(0, Nullable(Integer(0, 2**32 - 1)),
                          "Seed for a reproducible fit on the same machine and library versions (``None``: a fresh "
                          "random seed each fit)."),
    "device": Param("cpu", Device(), "Torch device for the L-GMVAE (``\"cpu\"``, ``\"cuda\"``, ...)."),
    "n_threads": Param(1, Nullable(Integer(1, 4096)), "Torch threads while fitting (restored afterwards); ``None`` keeps torch's."),
    "verbose": Param(True, Flag(), "Show a progress bar while training."),
}


def check_params(values: Dict[str, Any]) -> Dict[str, Any]:
    """Check every value of ``values`` against its rule; returns the checked values (errors name the parameter)."""
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise InvalidParameterError("unknown Lapace parameter(s) %s; parameters: %s" % (unknown, ", ".join(PARAMETERS)))
    return {name: PARAMETERS[name].rule.check(name, value) for name, value in values.items()}


def defaults() -> Dict[str, Any]:
    """Every parameter's default."""
    return {name: p.default for name, p in PARAMETERS.items()}


def per_call_names() -> Sequence[str]:
    """Parameters that ``Lapace.explain`` may override for one call."""
    return [name for name, p in PARAMETERS.items() if p.per_call]


def check_call(overrides: Dict[str, Any]) -> Dict[str, Any]:
    """Check one ``explain`` call's overrides of per-call parameters (``None``: the constructor's value)."""
    unknown = sorted(set(overrides) - set(per_call_names()))
    if unknown:
        raise InvalidParameterError("explain() got unknown parameter(s) %s; per-call parameters: %s" % (unknown, ", ".join(per_call_names())))
    return check_params({name: value for name, value in overrides.items() if value is not None})


def call_signature(leading: Sequence[inspect.Parameter]) -> inspect.Signature:
    """``Lapace.explain``'s signature: ``leading`` parameters, then every per-call parameter as a keyword (default
    ``None``: the constructor's value)."""
    return inspect.Signature(
        list(leading) + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in per_call_names()]
    )


def signature() -> inspect.Signature:
    """``Lapace.__init__``'s signature, built from the table: ``schema`` may be positional, the rest are keywords."""
    kinds = {"schema": inspect.Parameter.POSITIONAL_OR_KEYWORD}
    return inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, kinds.get(name, inspect.Parameter.KEYWORD_ONLY), default=p.default) for name, p in PARAMETERS.items()]
    )


def numpydoc(indent: str = "    ", per_call: bool = False) -> str:
    """The table (``per_call``: only the per-call parameters) as a numpydoc ``Parameters`` section body."""
    lines = []
    for name, p in PARAMETERS.items():
        if per_call and not p.per_call:
            continue
        lines.append("%s%s : default %r%s" % (indent, name, p.default, " (may be set per explain call)" if p.per_call else ""))
        lines.append("%s    %s" % (indent, p.doc))
    return "\n".join(lines)
