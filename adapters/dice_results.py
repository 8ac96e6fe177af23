"""The DiCE adapter's results: DiCE's ``CounterfactualExamples`` per query and DiCE's printed messages.

:class:`DiceResults` is a mixin of :class:`lapace_plugin.adapters.dice.LapaceDice`: it reads the adapter's
``data_interface``, ``model`` and ``_outcome`` and holds no state of its own.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from dice_ml.diverse_counterfactuals import CounterfactualExamples

_NO_CF_MESSAGE = "No Counterfactuals found for the given configuration, perhaps try with different parameters..."
_FEW_CF_MESSAGE = "Diverse Counterfactuals found for the given configuration, perhaps try with different parameters..."


class DiceResults:
    """Build DiCE's result objects, with DiCE's messages (module docstring)."""

    __slots__ = ()  # a mixin: DiCE reassigns __class__, so the instance layout stays ExplainerBase's

    def _labels(self, indices: Sequence[int]) -> List[Any]:
        """Model output labels (``classes_`` of sklearn models) of class indices."""
        return list(self.decode_model_output(pd.Series(np.asarray(indices, dtype=int))))

    def _with_outcome(
        self,
        frame: pd.DataFrame,
        labels: List[Any],
        queries: pd.DataFrame,
        rows: Optional[List[pd.DataFrame]],
        qpos: np.ndarray,
    ) -> pd.DataFrame:
        """``frame`` plus the outcome column, in the dtypes of each row's query (DiCE's ensure_consistent_type)."""
        out = frame.reset_index(drop=True).copy()
        out[self._outcome] = pd.Series(labels, dtype=object) if len(labels) else pd.Series([], dtype=object)
        if len(out) == 0:
            return out
        if rows is None or len({_signature(r) for r in rows}) == 1:  # one set of dtypes: cast all at once
            return self.data_interface.ensure_consistent_type(out, queries.iloc[:1])
        parts = [self.data_interface.ensure_consistent_type(out.iloc[[r]], rows[q]) for r, q in enumerate(qpos)]
        return pd.concat(parts, ignore_index=True)

    def _examples(
        self,
        test_instance_df: pd.DataFrame,
        final_cfs_df: Optional[pd.DataFrame],
        final_cfs_df_sparse: Optional[pd.DataFrame],
        *,
        desired_class: Any,
        posthoc_sparsity_param: Optional[float],
        total_CFs: int,
        failure: Optional[str],
        elapsed: float,
        verbose: bool,
    ) -> CounterfactualExamples:
        found = 0 if final_cfs_df is None else len(final_cfs_df)
        minutes, seconds = divmod(elapsed, 60)
        if found == 0:  # DiCE's wording, then LAPACE's reason
            print(_NO_CF_MESSAGE, "; total time taken: %02d" % minutes, "min %02d" % seconds, "sec")
            if failure:
                print("LAPACE: %s" % failure)
        elif found < total_CFs:
            print(
                "Only %d (required %d) " % (found, total_CFs),
                _FEW_CF_MESSAGE,
                "; total time taken: %02d" % minutes,
                "min %02d" % seconds,
                "sec",
            )
            if failure:
                print("LAPACE: %s" % failure)
        elif verbose:
            print("Diverse Counterfactuals found! total time taken: %02d" % minutes, "min %02d" % seconds, "sec")
        return CounterfactualExamples(
            data_interface=self.data_interface,
            final_cfs_df=final_cfs_df,
            test_instance_df=test_instance_df,
            final_cfs_df_sparse=final_cfs_df_sparse,
            posthoc_sparsity_param=posthoc_sparsity_param,
            desired_class=desired_class,
            desired_range=None,
            model_type=self.model.model_type,
        )


def _rows(frame: pd.DataFrame, rows: slice) -> pd.DataFrame:
    out = frame.iloc[rows]  # a slice: no copy of the batch per query
    out.index = pd.RangeIndex(len(out))
    return out


def _signature(frame: pd.DataFrame) -> Tuple[Tuple[str, str], ...]:
    return tuple((str(c), str(t)) for c, t in frame.dtypes.items())
