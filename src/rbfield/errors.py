"""User-facing errors.

Anything raised as :class:`RbfieldError` is a problem with the user's input or
environment. The CLI prints its message as one line (no traceback) and exits
with status 2; library users can catch it like any exception.
"""


class RbfieldError(Exception):
    """An input or setting that rbfield cannot work with; the message says what to do."""


class TrainingDiverged(RbfieldError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ShapeWarning(UserWarning):
    """A shape that can be fitted but is not clean (open, non-manifold, misoriented, no normals, noisy)."""
