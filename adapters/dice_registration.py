"""Registration of LAPACE with ``dice_ml.Dice``: after :func:`register`, ``method="lapace"`` builds a
:class:`RegisteredLapaceDice`. Re-exported by :mod:`lapace_plugin.adapters.dice`."""

from __future__ import annotations

from typing import Any, Callable, Dict

import dice_ml
import dice_ml.dice

from .dice import METHOD, LapaceDice

_REGISTERED_DEFAULTS: Dict[str, Any] = {}


class RegisteredLapaceDice(LapaceDice):
    """The class ``dice_ml.Dice(d, m, method="lapace", ...)`` builds after :func:`register`.

    It is :class:`LapaceDice` with the keyword defaults given to :func:`register`; keywords passed to
    ``dice_ml.Dice`` win over them.
    """

    def __init__(self, data_interface: Any, model_interface: Any, **kwargs: Any) -> None:
        options = dict(_REGISTERED_DEFAULTS)
        options.update(kwargs)
        super().__init__(data_interface, model_interface, **options)


def register(**defaults: Any) -> None:
    """Make ``dice_ml.Dice(d, m, method="lapace", ...)`` return a LAPACE explainer.

    DiCE 0.12 picks its explainer class in the module function ``dice_ml.dice.decide``; this wraps it once
    (calling ``register`` again does not wrap it twice). Keywords given to ``dice_ml.Dice`` reach
    :class:`LapaceDice` (``explainer=``, ``strategy=``, ``random_state=``, ...).

    Parameters
    ----------
    **defaults
        Defaults for those keywords, so that a DiCE script can switch to LAPACE by its ``method`` name
        alone, e.g. ``register(random_state=0, strategy="last")``. Each call replaces the previous defaults.
    """
    _REGISTERED_DEFAULTS.clear()
    _REGISTERED_DEFAULTS.update(defaults)
    if is_registered():
        return
    original: Callable[..., Any] = dice_ml.dice.decide

    def decide(model_interface: Any, method: Any) -> Any:
        if method == METHOD:
            return RegisteredLapaceDice
        return original(model_interface, method)

    decide.__wrapped__ = original  # type: ignore[attr-defined]
    decide._lapace_plugin = True  # type: ignore[attr-defined]
    dice_ml.dice.decide = decide


def unregister() -> None:
    """Undo :func:`register`: restore DiCE's own ``decide`` and forget the defaults."""
    _REGISTERED_DEFAULTS.clear()
    while is_registered():
        dice_ml.dice.decide = dice_ml.dice.decide.__wrapped__


def is_registered() -> bool:
    """Whether ``method="lapace"`` is currently known to ``dice_ml.Dice``."""
    return bool(getattr(dice_ml.dice.decide, "_lapace_plugin", False))
