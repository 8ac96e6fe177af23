"""LAPACE's exception types: one for bad parameters, one for using an unfitted explainer."""

from __future__ import annotations


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type or out of its range (as scikit-learn's ``InvalidParameterError``).

    Both a ``ValueError`` and a ``TypeError``, so callers and tests catch one thing whatever was wrong.
    """


class NotFittedError(ValueError, AttributeError):
    """Raised when an unfitted ``Lapace`` is used."""


__all__ = ["InvalidParameterError", "NotFittedError"]
