"""Relations between numeric features: derived features, declared relations and changes that move together.

Expressions are arithmetic on column names, parsed by a small whitelist over Python's syntax tree (never ``eval``):
numbers, column names (```back-quoted``` when not identifiers), ``+ - * /``, parentheses and ``change(column)``, the
counterfactual's value minus the query's. A relation is one comparison (``<=``, ``>=``, ``<``, ``>``, ``==``)::

    FeatureSchema(..., derived={"share": "12 * (expenditure + 1) / income"},
                  relations=["months <= 12 * age", "change(months) <= 12 * change(age)"])

A **derived** feature is never generated: every decoded row gets it computed from the others (rounded to the data's
precision), so it cannot disagree with them. A **relation** is checked on every candidate by the one constraint checker
(:meth:`lapace_plugin.constraints.Constraints.violations`, kind ``"relation"``), pushed towards by the latent repair,
and a candidate that still breaks it is not a counterfactual. The same compiled expression runs on numpy arrays (the
checker) and on torch tensors (the repair's penalty).
"""

from __future__ import annotations

import ast
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .errors import InvalidParameterError
from .rules import CHANGE_TOL, decimals_of, round_to_precision

Values = Callable[[str], Any]
"""``values(column)``: a column's numbers (numpy array or torch tensor)."""

_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: lambda a, b: a / b}
_COMPARISONS = {ast.LtE: "<=", ast.Lt: "<=", ast.GtE: ">=", ast.Gt: ">=", ast.Eq: "=="}
_QUOTED = re.compile(r"`([^`]+)`")


class Expression:
    """A parsed arithmetic expression on columns: ``expr(values, change)`` evaluates it.

    Attributes
    ----------
    text
        The expression as written.
    columns
        Columns it reads (``change(x)`` counts ``x``), in order of appearance.
    changes
        Columns it reads through ``change()``.
    alone
        ``(column, through change())`` when the expression is one column or one ``change(column)``, else ``None``.
    """

    def __init__(self, text: str, node: ast.AST, names: Mapping[str, str], columns: Optional[Sequence[str]],
                 allow_change: bool) -> None:
        self.text = text
        self.columns: List[str] = []
        self.changes: List[str] = []
        self._names, self._allow_change = names, allow_change
        self._known = None if columns is None else set(columns)  # None: any name (bound to a schema later)
        self._run = self._compile(node)
        self.alone = (self.columns[0], bool(self.changes)) if isinstance(node, (ast.Name, ast.Call)) else None

    def __call__(self, values: Values, change: Optional[Values] = None) -> Any:
        return self._run(values, change)

    def _fail(self, what: str) -> InvalidParameterError:
        return InvalidParameterError(
            "expression %r: %s; allowed: numbers, numeric column names (`back-quoted` if needed), + - * /, parentheses%s"
            % (self.text, what, ", change(column)" if self._allow_change else "")
        )

    def _column(self, node: ast.AST) -> str:
        name = self._names.get(node.id, node.id) if isinstance(node, ast.Name) else None
        if name is None:
            raise self._fail("%s is not allowed" % _describe(node))
        if self._known is not None and name not in self._known:
            raise InvalidParameterError(
                "expression %r reads unknown column %r; numeric columns: %s" % (self.text, name, sorted(self._known, key=str))
            )
        if name not in self.columns:
            self.columns.append(name)
        return name

    def _compile(self, node: ast.AST) -> Callable[[Values, Optional[Values]], Any]:
        value = getattr(node, "n" if type(node).__name__ == "Num" else "value", None)  # Python 3.7 parses numbers as Num
        if type(node).__name__ in ("Constant", "Num") and isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
            return lambda values, change: number
        if isinstance(node, ast.Name):
            name = self._column(node)
            return lambda values, change: values(name)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            op, left, right = _OPERATORS[type(node.op)], self._compile(node.left), self._compile(node.right)
            return lambda values, change: op(left(values, change), right(values, change))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner, sign = self._compile(node.operand), -1.0 if isinstance(node.op, ast.USub) else 1.0
            return lambda values, change: sign * inner(values, change)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "change":
            if not self._allow_change:
                raise self._fail("change() compares with the query and is not allowed here")
            if len(node.args) != 1 or node.keywords:
                raise self._fail("change() takes one column name")
            name = self._column(node.args[0])
            self.changes.append(name)
            return lambda values, change: change(name)
        if isinstance(node, ast.Call):
            raise self._fail("calls other than change(column) are not allowed")
        raise self._fail("%s is not allowed" % _describe(node))


_SYMBOLS = {"Pow": "**", "Mod": "%", "FloorDiv": "//", "MatMult": "@", "BitAnd": "&", "BitOr": "|", "BitXor": "^",
            "LShift": "<<", "RShift": ">>", "Not": "not", "Invert": "~"}


def _describe(node: ast.AST) -> str:
    """A refused piece of an expression in words that do not depend on the Python version's syntax tree names."""
    kind = type(node).__name__
    if kind in ("Constant", "Str", "Bytes", "NameConstant", "Num"):
        return "the constant %r" % (getattr(node, "value", getattr(node, "s", getattr(node, "n", None))),)
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.BoolOp)):
        return "the operator %s" % _SYMBOLS.get(type(node.op).__name__, type(node.op).__name__)
    if isinstance(node, ast.Attribute):
        return "attribute access"
    return "%s syntax" % kind


def _tree(text: Any, what: str) -> Tuple[ast.AST, Dict[str, str]]:
    """The syntax tree of ``text`` with back-quoted names replaced by identifiers (``names`` maps them back)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterError("%s must be a non-empty string expression, got %r" % (what, text))
    names: Dict[str, str] = {}

    def quote(match: Any) -> str:
        key = "_q%d_" % len(names)
        names[key] = match.group(1)
        return key

    try:
        return ast.parse(_QUOTED.sub(quote, text).strip(), mode="eval").body, names
    except SyntaxError as exc:
        raise InvalidParameterError("%s %r does not parse: %s" % (what, text, exc.msg)) from None


def expression(text: Any, columns: Sequence[str], allow_change: bool = False, what: str = "expression") -> Expression:
    """Parse an arithmetic expression on ``columns`` (see the module docstring)."""
    node, names = _tree(text, what)
    return Expression(text, node, names, columns, allow_change)


class Relation:
    """``left <op> right`` between two expressions of numeric columns, e.g. ``"months <= 12 * age"``.

    ``derived`` names the derived feature a relation states (:func:`derived_relations`), else ``None``.

    Parameters
    ----------
    text
        One comparison: ``<=``, ``>=`` (``<`` and ``>`` read the same), or ``==``.
    tolerance
        Relative slack: the relation holds when it is broken by at most ``tolerance * |right|`` (plus
        :data:`lapace_plugin.rules.CHANGE_TOL` of the columns' range), e.g. ``0.06`` for a ratio within 6%.
    absolute
        Absolute slack in the relation's units (a derived feature's rounding).
    """

    derived: Optional[str] = None

    def __init__(self, text: str, tolerance: float = 0.0, absolute: float = 0.0) -> None:
        self.text, self.absolute = text, float(absolute)
        try:
            self.tolerance = float(tolerance)
        except (TypeError, ValueError):
            raise InvalidParameterError("relation %r: tolerance must be a number >= 0, got %r" % (text, tolerance)) from None
        if not self.tolerance >= 0:
            raise InvalidParameterError("relation %r: tolerance must be a number >= 0, got %r" % (text, tolerance))
        self.left: Optional[Expression] = None
        self.right: Optional[Expression] = None
        self.op = ""

    def bind(self, columns: Optional[Sequence[str]]) -> "Relation":
        """Parse against the schema's numeric ``columns`` (errors name the relation and the unknown column)."""
        node, names = _tree(self.text, "relation")
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARISONS):
            raise InvalidParameterError("relation %r must be one comparison: <=, >=, <, > or ==" % self.text)
        self.op = _COMPARISONS[type(node.ops[0])]
        self.left = Expression(self.text, node.left, names, columns, True)
        self.right = Expression(self.text, node.comparators[0], names, columns, True)
        if not self.columns:
            raise InvalidParameterError("relation %r reads no column; a relation constrains numeric features" % self.text)
        return self

    @property
    def columns(self) -> List[str]:
        return list(dict.fromkeys(self.left.columns + self.right.columns))

    @property
    def changes(self) -> List[str]:
        """Columns read through ``change()``: the query's values matter."""
        return list(dict.fromkeys(self.left.changes + self.right.changes))

    def excess(self, values: Values, change: Optional[Values] = None) -> Tuple[Any, Any]:
        """``(how far the relation is broken, the slack it is allowed)``: broken where the first exceeds the second."""
        left, right = self.left(values, change), self.right(values, change)
        gap = {"<=": lambda: left - right, ">=": lambda: right - left, "==": lambda: abs(left - right)}[self.op]()
        return gap, self.tolerance * abs(right) + self.absolute

    def broken(self, frame: pd.DataFrame, factuals: pd.DataFrame, scale: float) -> np.ndarray:
        """Rows of raw ``frame`` breaking the relation (``factuals``: row-aligned queries, for ``change()``);
        ``scale`` is the columns' largest range (the slack's absolute part). NaN counts as broken."""

        def values(name: str) -> np.ndarray:
            return np.asarray(frame[name].to_numpy(), dtype=float)

        def change(name: str) -> np.ndarray:
            return values(name) - np.asarray(factuals[name].to_numpy(), dtype=float)

        with np.errstate(divide="ignore", invalid="ignore"):
            gap, slack = self.excess(values, change)
            gap = np.broadcast_to(np.asarray(gap, dtype=float), (len(frame),))
            return ~(gap <= slack + CHANGE_TOL * scale)

    def settle(self, values: Values, change: Values, current: np.ndarray, factual: np.ndarray) -> Optional[np.ndarray]:
        """New values of the left side's column making the relation hold, when the left side is one column (or its
        ``change()``) that the right side does not read: ``current`` moved to the bound where it breaks it (raw
        numbers; ``factual``: the query's). ``None`` for other relations."""
        if self.left.alone is None or self.left.alone[0] in self.right.columns:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.asarray(self.right(values, change), dtype=float) + (factual if self.left.alone[1] else 0.0)
        bound = np.where(np.isfinite(bound), bound, current)
        return {"<=": np.minimum, ">=": np.maximum, "==": lambda a, b: b}[self.op](current, bound)

    def to_dict(self) -> Any:
        return self.text if not self.tolerance else {"relation": self.text, "tolerance": self.tolerance}

    def __repr__(self) -> str:
        return "Relation(%r%s)" % (self.text, ", tolerance=%g" % self.tolerance if self.tolerance else "")


RelationLike = Union[str, Relation, Mapping[str, Any]]


def relations_of(value: Any, columns: Optional[Sequence[str]]) -> List[Relation]:
    """Relations from a string, a :class:`Relation`, a ``{"relation": text, "tolerance": t}`` dict, or a list of those,
    parsed against numeric ``columns`` (``None``: any column name, checked once bound to a schema)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, Relation, Mapping)) else list(value)
    out = []
    for item in items:
        if isinstance(item, Mapping):
            unknown = sorted(set(item) - {"relation", "tolerance"})
            if unknown or "relation" not in item:
                raise InvalidParameterError("a relation dict needs 'relation' (and optionally 'tolerance'), got %r" % (item,))
            item = Relation(item["relation"], item.get("tolerance", 0.0))
        elif isinstance(item, str):
            item = Relation(item)
        elif not isinstance(item, Relation):
            raise InvalidParameterError("relations must be strings or Relation objects, got %r" % (item,))
        rel = Relation(item.text, item.tolerance, item.absolute).bind(columns)
        rel.derived = item.derived
        out.append(rel)
    return out


def derived_of(value: Optional[Mapping[str, Any]], continuous: Sequence[str]) -> Dict[str, Expression]:
    """``{feature: expression}`` of derived features, parsed against the other continuous features."""
    out: Dict[str, Expression] = {}
    for name, text in (value or {}).items():
        if name not in continuous:
            raise InvalidParameterError("derived feature %r must be a continuous feature of the schema; continuous: %s"
                                        % (name, list(continuous)))
        others = [c for c in continuous if c != name and c not in (value or {})]
        out[name] = expression(text, others, what="derived feature %r" % name)
    return out


def derive(schema: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every derived feature of ``schema`` recomputed from the others and rounded to the data's
    precision (in place; returned for chaining)."""
    derived = getattr(schema, "derived", None)
    if not derived or not len(frame):
        return frame
    for name, expr in derived.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.asarray(expr(lambda c: np.asarray(frame[c].to_numpy(), dtype=float)), dtype=float)
        value = np.broadcast_to(value, (len(frame),)).astype(float)
        frame[name] = round_to_precision(value, schema, name, frame[name].dtype if name in frame else None)
    return frame


def derived_relations(schema: Any) -> List[Relation]:
    """Each derived feature as the relation ``feature == expression`` (checked like any relation; holds by
    construction up to the rounding to the data's precision)."""
    out = []
    for name, expr in schema.derived.items():
        decimals = decimals_of(schema, name)
        decimals = 6 if decimals is None else decimals
        rel = Relation("`%s` == %s" % (name, expr.text), absolute=0.5 * 10.0 ** -decimals).bind(schema.continuous)
        rel.derived = name
        out.append(rel)
    return out


def through_derived(schema: Any, values: Values) -> Values:
    """``values`` where a derived feature reads as its expression of the others (rows not yet derived)."""

    def read(name: str) -> Any:
        return schema.derived[name](values) if name in schema.derived else values(name)

    return read
