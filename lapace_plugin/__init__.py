"""LAPACE counterfactual explanations on a label-conditional Gaussian mixture VAE."""

from __future__ import annotations

from . import datasets
from .constraints import Constraints
from .errors import InvalidParameterError, NotFittedError
from .explainer import Lapace
from .relations import Relation
from .result import Explanation
from .schema import FeatureSchema

__version__ = "0.1.0"

__all__ = ["Constraints", "Explanation", "FeatureSchema", "InvalidParameterError", "Lapace", "NotFittedError", "Relation", "datasets", "__version__"]
