"""Errors whose message is one sentence a user can act on.

Each error carries a ``kind`` that the worker protocol forwards unchanged, so the GIMP plug-in
can tell the user's mistakes (``bad-input``) from a broken installation (``model``).
"""


class S2CRNetError(Exception):
    kind = "internal"


class BadInput(S2CRNetError, ValueError):
    """The caller's image, mask or option is unusable; the message names it and the fix."""

    kind = "bad-input"


class ModelError(S2CRNetError, RuntimeError):
    """Weights are missing, corrupt or do not match the variant; the message names the fix."""

    kind = "model"
