"""The code's shape, read from its syntax trees: each shared rule is defined once, no module grows past 450 lines,
and ``Lapace.explain`` stays a short composition (README "Architecture")."""

from __future__ import annotations

import ast
import os
from collections import Counter
from typing import Dict, List

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("lapace_plugin", "adapters")

RULES = {
    "assigned_to": "rules.py",  # valid: argmax of the probabilities equals the target
    "decimals_of": "rules.py",  # the decimals a feature is rounded to
    "round_to_precision": "rules.py",  # rounding raw values to the data's precision
    "changed_features": "rules.py",  # "changed", with the one tolerance CHANGE_TOL
    "check_unique_index": "rules.py",  # the queries' index labels identify them
    "repeated_labels": "rules.py",  # which labels an index repeats
    "check_row_ids": "rules.py",  # batch row ids: never null, never repeated
    "resolve_targets": "targets.py",  # target_class -> class index per query (None, scalar, sequence, Series, dict)
    "counterfactuals_with_paths": "result.py",  # counterfactuals joined with their path rows
    "checked_proba": "classifier.py",  # calling the classifier and checking its output
    "embedded_mean_l1": "distance.py",  # the (1/d)-L1 distance in the one-hot space (RoCELib's distance_func)
}

MAX_LINES = 450


def _modules() -> Dict[str, ast.Module]:
    out = {}
    for top in SOURCES:
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    with open(path, encoding="utf-8") as fh:
                        out[os.path.relpath(path, ROOT)] = ast.parse(fh.read(), path)
    return out


MODULES = _modules()


def _definitions(name: str) -> List[str]:
    return [path for path, tree in MODULES.items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_each_rule_is_defined_once_in_its_core_module(rule):
    found = _definitions(rule)
    assert len(found) == 1 and os.path.basename(found[0]) == RULES[rule], found


def test_validity_is_never_restated_as_an_argmax_comparison():
    restated = []
    for path, tree in MODULES.items():
        if path.endswith(os.path.join("lapace_plugin", "rules.py")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                sides = [node.left] + list(node.comparators)
                if any(isinstance(s, ast.Call) and isinstance(s.func, ast.Attribute) and s.func.attr == "argmax" for s in sides):
                    restated.append("%s:%d" % (path, node.lineno))
    assert not restated, "use lapace_plugin.rules.assigned_to: %s" % restated


def test_the_unique_index_check_is_not_restated():
    restated = ["%s:%d" % (path, node.lineno) for path, tree in MODULES.items() for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr in ("is_unique", "has_duplicates")
                and not path.endswith("rules.py")]
    assert not restated, "use lapace_plugin.rules.check_unique_index: %s" % restated


def test_no_module_is_over_450_lines():
    long = {}
    for path in MODULES:
        with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
            lines = sum(1 for _ in fh)
        if lines > MAX_LINES:
            long[path] = lines
    assert not long


def test_lapace_explain_is_a_short_composition():
    tree = MODULES[os.path.join("lapace_plugin", "explainer.py")]
    lapace = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Lapace")
    explain = next(n for n in lapace.body if isinstance(n, ast.FunctionDef) and n.name == "explain")
    body = explain.body[1:] if isinstance(explain.body[0], ast.Expr) and isinstance(explain.body[0].value, ast.Constant) else explain.body
    lines = body[-1].end_lineno - body[0].lineno + 1 if hasattr(body[-1], "end_lineno") else None
    if lines is None:  # Python 3.7's ast has no end_lineno: count to the next statement of the class
        following = lapace.body[lapace.body.index(explain) + 1]
        lines = following.lineno - body[0].lineno - 1
    assert lines <= 40, lines


def test_every_registry_is_typed_by_its_contract():
    contracts = {"PATH_KINDS": "PathKind", "SEARCHES": "Search", "STRATEGIES": "Strategy", "REFINERS": "Refiner"}
    typed = Counter()
    for tree in MODULES.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in contracts:
                assert ast.dump(node.annotation).count(contracts[node.target.id]) == 1, node.target.id
                typed[node.target.id] += 1
    assert typed == Counter(dict.fromkeys(contracts, 1))
