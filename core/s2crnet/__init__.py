"""S2CRNet image harmonization: predict colour curves on thumbnails, apply them at full resolution.

Public API: :func:`predict_curves`, :func:`harmonize`, :class:`Curves`.
"""

__version__ = "0.8.0"

from s2crnet.curves import Curves
from s2crnet.errors import BadInput, ModelError


def __getattr__(name: str):  # lazy: importing torch costs ~1 s, the plug-in bridge never needs it
    if name in ("predict_curves", "harmonize", "Engine"):
        from s2crnet import engine as _h

        return getattr(_h, name)
    raise AttributeError(name)


__all__ = ["Curves", "BadInput", "ModelError", "predict_curves", "harmonize", "Engine", "__version__"]
