"""User-facing errors: entry points print these as one line and exit non-zero."""


class DepthLightningError(Exception):
    """A problem with the user's input (a file, a setting) that a traceback would not explain."""


class DataError(DepthLightningError):
    """A data file that is missing, unreadable or not in the expected layout."""


class CheckpointError(DepthLightningError):
    """A checkpoint that is missing, unsafe or of the wrong kind."""
