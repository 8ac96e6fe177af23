"""LAPACE counterfactual explanations on a label-conditional Gaussian mixture VAE."""

from __future__ import annotations

from . import datasets
from .constraints import Constraints
from .explainer import Lapace, NotFittedError
from .result import Explanation
from .schema import FeatureSchema

__version__ = "0.1.0"

__all__ = ["Constraints", "Explanation", "FeatureSchema", "Lapace", "NotFittedError", "datasets", "__version__"]
