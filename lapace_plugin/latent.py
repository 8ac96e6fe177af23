"""The fitted L-GMVAE as a space of rows: decode latent points, realise them as valid rows, judge them.

``realise`` turns latent points into snapped encoded rows (decode, optional path correction, gradient repair of
constraint violations, hard projection); ``judge`` turns those into raw rows and asks the classifier and the
constraint checker which are valid counterfactuals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import torch

from .batch import CLASS, CONSISTENCY, CONSTRAINT, PAIR, Points
from .constraints import Constraints, EncodedConstraints
from .errors import InvalidParameterError
from .lgmvae import LGMVAE
from .relations import derive
from .rules import assigned_to
from .training import Adam

if TYPE_CHECKING:  # pragma: no cover - the state module imports this one
    from .fitted import FittedState

DECODE_CHUNK = 65536
Predict = Callable[[pd.DataFrame], np.ndarray]


class Correction(NamedTuple):
    """Per-row correction of decoded points (corrected and sparse paths).

    ``offset (N, D)`` is added to the decoder's output before snapping; a continuous value within ``tolerance (N,)``
    (scaled units) of the factual's, or a category within ``margin (N,)`` of the factual's, keeps the factual's value
    (:meth:`TabularEncoder.snap_near`).
    """

    offset: np.ndarray
    margin: np.ndarray
    tolerance: np.ndarray


class Centroids(NamedTuple):
    """The decoded centroids of the K = L * m components."""

    points: np.ndarray  # (K, D) snapped decoded centroids
    proba: np.ndarray  # (K, L) classifier probabilities
    valid: np.ndarray  # (K,) assigned to their own class
    raw: pd.DataFrame  # (K rows) raw decoded centroids, indexed by component name


class Members(NamedTuple):
    """Training rows kept as path ends (``path="neighbour"``): each the classifier's class and most responsible
    component agree on."""

    points: np.ndarray  # (M, D) encoded rows (de-duplicated)
    latents: np.ndarray  # (M, latent_dim) their latent means
    component: np.ndarray  # (M,) their component


class LatentSpace:
    """Decode, realise and judge latent points of a fitted L-GMVAE.

    Parameters
    ----------
    state
        The fit (:class:`lapace_plugin.fitted.FittedState`): its network, encoder, device, classes, decoded
        centroids, pair support, kept training rows and projection cache (shared across calls).
    predict
        The classifier: raw frame -> probabilities ``(N, L)``, checked.
    min_pair_count
        The plausibility filter's threshold (0: off): a candidate holding a pair of states fewer training rows hold,
        which its query does not hold itself, is not valid.
    settled
        Whether the state's decoded centroids are final (``False`` while ``fit`` settles them: no ``centroids``).
    consistency
        Whether a candidate the learned consistency check rejects (:mod:`lapace_plugin.consistency`) is not valid.

    Attributes
    ----------
    names
        Component names ``"label/index"``, one per component.
    """

    def __init__(self, state: "FittedState", predict: Predict, min_pair_count: int = 0, settled: bool = True,
                 consistency: bool = False) -> None:
        self.model, self.encoder, self.device, self.predict = state.model, state.encoder, state.device, predict
        self.schema = state.schema
        self.centroids = state.centroids if settled else None
        self.classes = list(state.classes)
        self.names = state.names
        self.projections = state.projections
        self.support = state.support if min_pair_count > 0 else None
        self.min_pair_count = min_pair_count
        self.members = state.members
        self._outlier_factor = state.outlier_factor
        self.inconsistent = state.inconsistent if consistency else None

    @property
    def m(self) -> int:
        return self.model.m

    @property
    def mu(self) -> np.ndarray:
        """Latent centroids ``(K, latent_dim)``."""
        return self.model.prior_mean.detach().cpu().numpy()

    def outlier_factor(self, points: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Local outlier factor ``(N,)`` of encoded ``points (N, D)`` among the kept training rows of their target
        class index ``target (N,)`` (:mod:`lapace_plugin.typical`)."""
        if self.members is None:
            raise InvalidParameterError("max_lof needs the training rows an explainer keeps: fit it with neighbours > 0")
        return self._outlier_factor(self.members, self.m, points, target)

    def revertible(self) -> Tuple[List[str], List[np.ndarray]]:
        """The features a refiner may set back and their encoded columns (:meth:`TabularEncoder.blocks`): every feature
        but the derived ones, which follow the others (reverting an input re-derives them; relations are judged again)."""
        names = self.encoder.numeric + [name for name, _ in self.encoder.groups]
        kept = [(name, b) for name, b in zip(names, self.encoder.blocks()) if name not in self.schema.derived]
        return [name for name, _ in kept], [b for _, b in kept]

    # ------------------------------------------------------------------ network
    def decode(self, z: np.ndarray) -> np.ndarray:
        """Decoder probabilities for latent points ``z (N, L)``, in chunks; returns ``(N, D)`` float32."""
        out = np.empty((len(z), self.model.input_dim), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(z), DECODE_CHUNK):
                zt = torch.as_tensor(z[start : start + DECODE_CHUNK], device=self.device)
                out[start : start + DECODE_CHUNK] = self.model.decode(zt).cpu().numpy()
        return out

    def latent_means(self, x: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``z_x (N, latent_dim)`` and the most responsible component ``(N,)`` of encoded rows with labels."""
        zs, cs = [], []
        with torch.no_grad():
            for start in range(0, len(x), DECODE_CHUNK):
                xt = torch.as_tensor(x[start : start + DECODE_CHUNK], device=self.device)
                yt = torch.as_tensor(labels[start : start + DECODE_CHUNK], dtype=torch.long, device=self.device)
                z, c = self.model.latent_mean(xt, yt)
                zs.append(z.cpu().numpy())
                cs.append(c.cpu().numpy())
        return np.concatenate(zs), np.concatenate(cs)

    def decode_and_classify(self, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Snapped decodings ``(N, D)`` of latent points, their probabilities ``(N, L)`` and whether each is plausible,
        scored (finite probabilities) and, with the consistency check on, consistent for the class it is assigned to
        ``(N,)``."""
        points = self.encoder.snap(self.decode(z.astype(np.float32)))
        raw = self.encoder.decode(points)
        proba = self.predict(raw)
        ok = np.isfinite(proba).all(1)
        ok[ok] = ~self.rare(points[ok])
        hit = np.flatnonzero(ok)
        if self.inconsistent is not None and len(hit):
            ok[hit] = ~self.inconsistent(raw.iloc[hit], proba[hit].argmax(1))
        return points, proba, ok

    def rare(self, points: np.ndarray, factuals: Optional[np.ndarray] = None, exempt: Optional[Sequence[str]] = None) -> np.ndarray:
        """Snapped rows holding a pair of states that fewer than ``min_pair_count`` training rows hold (and, with
        row-aligned ``factuals``, that the factual does not hold, among pairs of the ``exempt`` features); all False
        when the filter is off."""
        if self.support is None:
            return np.zeros(len(points), dtype=bool)
        own = None if factuals is None else self.encoder.states(factuals)
        return self.support.rare(self.encoder.states(points), self.min_pair_count, own, exempt)

    # ------------------------------------------------------------------ rows
    def realise(
        self,
        z: np.ndarray,
        factuals: np.ndarray,
        compiled: Optional[EncodedConstraints] = None,
        correction: Optional[Correction] = None,
        exempt: Optional[Sequence[str]] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Latent points ``(N, L)`` -> snapped encoded rows ``(N, D)`` and whether each broke a constraint ``(N,)``.

        The decoding (plus ``correction.offset``) is snapped; with constraints, every point is hard-projected onto
        them (:meth:`EncodedConstraints.project`). A point whose snapped decoding breaks them gets gradient steps
        (:func:`repair`, all such points of the call in one batch) before its projection only where the projection
        alone leaves an implausible row: one holding a pair of states the plausibility filter refuses (:meth:`rare`,
        the factual's own pairs accepted among the ``exempt`` features, default all). Without the filter
        (``min_pair_count=0``) every such point gets the gradient steps, as before the filter existed.
        """
        decoded = self.decode(z.astype(np.float32))
        offset = margin = tolerance = None
        if correction is not None:
            offset, margin, tolerance = correction
            decoded += offset

        def snap(arr: np.ndarray, rows: Any = slice(None)) -> np.ndarray:
            if correction is None:
                return self.encoder.snap(arr)
            return self.encoder.snap_near(arr, factuals[rows], margin[rows], tolerance[rows])

        if compiled is None:
            return snap(decoded), np.zeros(len(z), dtype=bool)

        def repair_needed(broken: np.ndarray, projected: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> np.ndarray:
            """Which rows (the call's ``rows``) need gradient steps: their snapped decoding is ``broken`` and, with the
            plausibility filter on, the projection of those (``projected(hit)``, hit: positions in ``rows``) is
            implausible."""
            out = broken.copy()
            hit = np.flatnonzero(out)
            if self.support is not None and len(hit):
                out[hit] = self.rare(projected(hit), factuals[rows[hit]], exempt)
            return out

        def needs(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
            snapped = snap(arr, rows)
            broken = compiled.needs_repair(snapped, factuals[rows])
            return repair_needed(broken, lambda hit: compiled.project(
                arr[hit], factuals[rows[hit]], lambda a: snap(a, rows[hit]), snapped[hit]), rows)

        snapped = snap(decoded)
        broken = compiled.needs_repair(snapped, factuals)
        points = compiled.project(decoded, factuals, snap, snapped)
        need = np.flatnonzero(repair_needed(broken, lambda hit: points[hit], np.arange(len(z))))
        if len(need):
            repaired = repair(
                self.model, z[need].astype(np.float32), factuals[need], compiled, self.device,
                offset=None if offset is None else offset[need], needs=lambda arr, rows: needs(arr, need[rows]),
            )
            points[need] = compiled.project(repaired, factuals[need], lambda arr: snap(arr, need))
        return points, broken

    def to_raw(self, points: np.ndarray, factuals: np.ndarray, raw_factuals: pd.DataFrame, features: Optional[List[str]] = None) -> pd.DataFrame:
        """Raw rows of encoded ``points``; continuous values equal to the factual's keep its exact raw value.

        ``features`` limits that to some continuous features (default: all).
        """
        raw = self.encoder.decode(points)
        cont = self.schema.continuous if features is None else [f for f in features if f in self.schema.continuous]
        for name in cont:
            j = self.encoder.column(name)
            same = points[:, j] == factuals[:, j]
            if same.any():
                values = raw[name].to_numpy().copy()
                values[same] = raw_factuals[name].to_numpy()[same]
                raw[name] = values
        return self.encoder.restore_dtypes(derive(self.schema, raw))  # derived features from the final values

    def judge(
        self,
        points: np.ndarray,
        factuals: np.ndarray,
        raw_factuals: pd.DataFrame,
        target: np.ndarray,
        constraints: Optional[Constraints],
        repaired: Optional[np.ndarray] = None,
        learned: bool = True,
    ) -> Points:
        """Raw rows of encoded ``points (N, D)``, their target probability and validity: assigned to the target class,
        within the constraints and plausible (no rare pair of states the factual does not hold; ``learned=False``
        leaves the learned consistency check to :meth:`consistent`)."""
        raw = self.to_raw(points, factuals, raw_factuals)
        return self.judge_raw(points, raw, raw_factuals, target, constraints, repaired, factuals, learned=learned)

    def consistent(self, points: np.ndarray, factuals: np.ndarray, raw_factuals: pd.DataFrame, target: np.ndarray) -> np.ndarray:
        """Whether the learned consistency check accepts encoded ``points (N, D)`` for their target class, ``(N,)``
        (all True with the check off): the last of :meth:`judge`'s checks, on its own for callers that run it only on
        the rows they would keep (:func:`lapace_plugin.revert.revert_greedy`'s ``confirm``)."""
        if self.inconsistent is None or not len(points):
            return np.ones(len(points), dtype=bool)
        return ~self.inconsistent(self.to_raw(points, factuals, raw_factuals), target)

    def judge_raw(
        self,
        points: np.ndarray,
        raw: pd.DataFrame,
        raw_factuals: pd.DataFrame,
        target: np.ndarray,
        constraints: Optional[Constraints],
        repaired: Optional[np.ndarray] = None,
        factuals: Optional[np.ndarray] = None,
        exempt: Optional[Sequence[str]] = None,
        learned: bool = True,
    ) -> Points:
        """Like :meth:`judge` for raw rows already built (``factuals``: encoded, and ``exempt``, for the plausibility
        filter, :meth:`rare`)."""
        probs = self.predict(raw)
        # a row the classifier cannot score is never a counterfactual
        failed = np.where(assigned_to(probs, target), -1, CLASS)
        checks: List[Tuple[int, Callable[[np.ndarray], np.ndarray]]] = [
            (PAIR, lambda hit: self.rare(points[hit], None if factuals is None else factuals[hit], exempt))]
        if constraints is not None:
            checks.append((CONSTRAINT, lambda hit: constraints.broken(raw_factuals.iloc[hit], raw.iloc[hit], self.schema)))
        if learned and self.inconsistent is not None:
            checks.append((CONSISTENCY, lambda hit: self.inconsistent(raw.iloc[hit], target[hit])))
        for code, fails in checks:  # each judges only the rows that passed the checks before it, the costliest last
            hit = np.flatnonzero(failed < 0)
            if len(hit):
                failed[hit[fails(hit)]] = code
        return Points(
            encoded=points, raw=raw, proba=probs[np.arange(len(points)), target], valid=failed < 0,
            repaired=np.zeros(len(points), dtype=bool) if repaired is None else repaired, failed=failed,
        )


REPAIR_STEPS = 25
"""Most gradient steps of a repair, at :data:`REPAIR_RATE`; a point leaves as soon as it needs no more (checked every
:data:`REPAIR_CHECK` steps). Measured on ``explain(constraints="schema")`` of 400 adult queries (6,153 points
repaired): every point for all 25 steps (before) gave 1,245 counterfactuals, leaving when done 1,283 with 65% of the
gradient work (points pushed on after they are plausible drift from their path and lose the classifier more often
than they gain it). 15 steps at 0.1 did 36% of the work but lost counterfactuals on the saved COMPAS references
(685 valid of 690, against 691 at 25 steps and 0.05)."""
REPAIR_RATE = 0.05
REPAIR_CHECK = 3
"""Steps between two checks of which points still need repair (a check projects and filters them: numpy work)."""


def repair(
    model: LGMVAE,
    z: np.ndarray,
    factuals: np.ndarray,
    constraints: EncodedConstraints,
    device: torch.device,
    steps: int = REPAIR_STEPS,
    learning_rate: float = REPAIR_RATE,
    pull: float = 0.1,
    offset: Optional[np.ndarray] = None,
    needs: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
) -> np.ndarray:
    """Gradient steps on latent points so their decodings satisfy the constraints; returns decoded ``(N, D)``.

    Minimises ``penalty(Dec(z) + offset, factual) + pull * ||z - z0||^2`` from ``z0 = z`` (``offset``: the
    reconstruction correction of corrected paths, zero by default) and returns ``Dec(z) + offset``. With ``needs``
    (decoded rows, their positions ``(N',)`` -> whether each still needs repair), every :data:`REPAIR_CHECK` steps the
    points that no longer need it leave with their decoding (each point's steps are its own: the loss is a sum over
    points). The caller still hard-projects the result, so the constraints hold exactly afterwards.
    """
    out = np.empty(factuals.shape, dtype=np.float32)
    rows = np.arange(len(z))
    z0 = torch.as_tensor(z, device=device)
    f = torch.as_tensor(factuals, device=device)
    shift = torch.as_tensor(offset if offset is not None else np.zeros_like(factuals), device=device)
    zv = z0.clone().requires_grad_(True)
    optimiser = Adam([zv], learning_rate)
    for step in range(steps):
        decoded = model.decode(zv) + shift
        if needs is not None and step and step % REPAIR_CHECK == 0:
            current = decoded.detach().cpu().numpy()
            done = ~needs(current, rows)
            if done.any():
                out[rows[done]] = current[done]
                rows, keep = rows[~done], torch.as_tensor(np.flatnonzero(~done), device=device)
                if not len(rows):
                    return out
                z0, f, shift = z0[keep], f[keep], shift[keep]
                zv = zv.detach()[keep].requires_grad_(True)
                optimiser.keep([zv], keep)
                decoded = model.decode(zv) + shift
        loss = constraints.penalty(decoded, f).sum() + pull * ((zv - z0) ** 2).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        out[rows] = (model.decode(zv) + shift).cpu().numpy()
    return out
