"""Baseline counterfactual methods of the comparative study, one module each, and their registry.

- :mod:`.nnce`, :mod:`.drce`, :mod:`.robxce`: nearest-neighbour, diverse robust and RobX-style baselines;
- :mod:`.cchvae`, :mod:`.revise`: the latent-space generative methods C-CHVAE and REVISE on a VAE of this package's
  own (:mod:`.vae`);
- :mod:`.ellice`: ElliCE (the ``ellice`` package), robust over a Rashomon set of logistic models.

All are our implementations (or, for ElliCE, our binding) behind one interface, :class:`~.base.Baseline`. A new
baseline is one subclass and one line in :data:`BASELINES`.
"""

from __future__ import annotations

from typing import Dict, Type

from .base import Baseline
from .cchvae import CCHVAE
from .drce import DRCE
from .ellice import ElliCE
from .nnce import NNCE
from .revise import Revise
from .robxce import RobXCE

__all__ = ["Baseline", "NNCE", "DRCE", "RobXCE", "CCHVAE", "Revise", "ElliCE", "BASELINES"]

BASELINES: Dict[str, Type[Baseline]] = {"nnce": NNCE, "drce": DRCE, "robxce": RobXCE, "cchvae": CCHVAE, "revise": Revise,
                                        "ellice": ElliCE}
"""Baseline classes by the method names used in the study."""
