"""The one error type gpu_depth raises for bad input, parameters or files."""


class DepthError(ValueError):
    """Bad input, parameter or file; the message says what and where, on one line."""


class ExistingDepth(DepthError):
    """The photo already carries depth and replacing it was not asked for; callers add the flag to pass."""
