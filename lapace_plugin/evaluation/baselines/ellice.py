"""ElliCE: counterfactuals valid for every model of an ellipsoidal Rashomon set (the ``ellice`` package, MIT, after
Turbal et al., "ElliCE"), bound to this package's interface.

ElliCE explains a single-logit model in its own input space. Here that model is a scikit-learn
``LogisticRegression`` fitted on the paper's encoding (:class:`~lapace_plugin.evaluation.models.PaperEncoding`, the
study's ``--classifier logistic``): queries are encoded, ElliCE searches the encoded space (its ``continuous``
method, one-hot groups handled by ElliCE, the immutable features' columns held fixed), and every result is snapped
back to a valid raw row through the same encoder with the immutable features copied from the query. Validity is
then judged by the model on the raw row, as for every other method.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from ...encoding import TabularEncoder
from ...schema import FeatureSchema
from .base import Baseline

INSTALL = 'ElliCE needs the ellice package (pip install "lapace-plugin[ellice]", i.e. ellice==0.1.4)'


class ElliCE(Baseline):
    """ElliCE through the ``ellice`` package (see the module docstring). Returns one counterfactual per query.

    Parameters
    ----------
    schema, immutable
        See :class:`~.base.Baseline`.
    logistic
        The fitted binary ``sklearn.linear_model.LogisticRegression`` behind ``predict_proba``, fitted on the paper's
        encoding of the raw rows (``TabularEncoder(schema, typed=False)``).
    epsilon
        Rashomon parameter: models whose training loss is within ``epsilon`` of the optimum must all agree.
    max_iterations
        ElliCE's gradient steps per query.
    random_state
        Seed of torch's generator (ElliCE's Gumbel draws for one-hot groups).
    """

    name = "ellice"

    def __init__(
        self,
        schema: Optional[FeatureSchema] = None,
        immutable: Union[None, str, Sequence[str]] = None,
        logistic: Any = None,
        epsilon: float = 0.01,
        max_iterations: int = 1000,
        random_state: Any = None,
    ) -> None:
        super().__init__(schema=schema, immutable=immutable)
        self.logistic, self.epsilon = logistic, epsilon
        self.max_iterations, self.random_state = max_iterations, random_state

    def fit(self, X_train: pd.DataFrame, predict_proba: Any) -> "ElliCE":
        """See :meth:`~.base.Baseline.fit`; also builds ElliCE's explainer on the encoded training rows, labelled by
        the model (its Rashomon set is the models about as good as the logistic regression at fitting them)."""
        try:
            import ellice
        except ImportError:
            raise ImportError(INSTALL) from None
        from sklearn.linear_model import LogisticRegression

        if not isinstance(self.logistic, LogisticRegression) or len(getattr(self.logistic, "classes_", ())) != 2:
            raise ValueError("ElliCE explains a fitted binary sklearn LogisticRegression (or a single-logit torch "
                             "nn.Sequential); pass logistic=<the fitted LogisticRegression>, got %r" % type(self.logistic).__name__)
        super().fit(X_train, predict_proba)
        self.encoder_ = TabularEncoder(self.schema_, typed=False)
        if self.logistic.coef_.shape[1] != self.encoder_.width:
            raise ValueError("the LogisticRegression takes %d inputs; the paper's encoding of the schema has %d"
                             % (self.logistic.coef_.shape[1], self.encoder_.width))
        columns = list(self.encoder_.feature_names)
        frame = pd.DataFrame(self.encoder_.encode(self.X_train_).astype(np.float64), columns=columns)
        frame["__label__"] = self.train_pred_
        data = ellice.Data(dataframe=frame, target_column="__label__", continuous_features=columns[: self.encoder_.n_continuous],
                           categorical_features=columns[self.encoder_.n_continuous :])
        self.explainer_ = ellice.Explainer(self.logistic, data, backend="sklearn", device="cpu")
        self.groups_ = [columns[sl] for _, sl in self.encoder_.groups]
        fixed = {columns[j] for f in self.immutable_ for j in np.atleast_1d(np.arange(len(columns))[self.encoder_.column(f)])}
        self.to_vary_ = [c for c in columns if c not in fixed]
        return self

    def _generate(self, queries: pd.DataFrame, targets: np.ndarray, k: int) -> Tuple[pd.DataFrame, np.ndarray]:
        import torch

        from ..methods import quiet

        encoded = self.encoder_.encode(queries)
        frame = pd.DataFrame(encoded.astype(np.float64), columns=list(self.encoder_.feature_names))
        rows, owner = [], []
        for q in range(len(queries)):
            torch.manual_seed(int(self.random_state or 0))
            with quiet():
                out = self.explainer_.generate_counterfactuals(
                    frame.iloc[[q]], total_CFs=1, method="continuous", features_to_vary=self.to_vary_,
                    one_hot_groups=self.groups_, robustness_epsilon=self.epsilon, target_class=int(targets[q]),
                    optimization_params={"max_iterations": self.max_iterations}, progress_bar=False,
                )
            if out is None or len(out) == 0:
                self.failures[queries.index[q]] = "ElliCE found no counterfactual robust over its Rashomon set (epsilon %g)" % self.epsilon
                continue
            point = out[list(self.encoder_.feature_names)].to_numpy(dtype=np.float32)[:1]
            snapped = self.encoder_.snap(point)
            fixed = [j for j, c in enumerate(self.encoder_.feature_names) if c not in self.to_vary_]
            snapped[:, fixed] = encoded[q : q + 1, fixed]
            rows.append(self.encoder_.decode(snapped))
            owner.append(q)
        if not rows:
            return self.X_train_.iloc[:0], np.zeros(0, dtype=int)
        return pd.concat(rows, ignore_index=True), np.array(owner, dtype=int)
