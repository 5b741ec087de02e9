"""User-facing errors and the one convention that reports them.

A problem the user can fix (a file, a setting) is a :class:`DepthLightningError` whose message
starts with the file or setting it is about. The command-line wrapper prints it as one
``error: <message>`` line and exits non-zero; Python callers catch it. Exceptions from other
code are described by :func:`first_line`; :func:`user_error` and :func:`user_cause` find what to
report behind the wrappers of Hydra and Lightning.
"""

from __future__ import annotations

import copy
import signal


class DepthLightningError(Exception):
    """A problem with the user's input (a file, a setting) that a traceback would not explain."""

    def reroot(self, old: str, new: str) -> DepthLightningError:
        """The same error with the setting it names moved from under `old` to under `new`
        (``model.net.x`` -> ``coarse_stage.model.net.x``): module settings are named from their
        own config node, and a stage configured elsewhere says where.

        Example:
            >>> str(DepthLightningError("model.net.width: must be at least 1")
            ...     .reroot("model", "coarse_stage.model"))
            'coarse_stage.model.net.width: must be at least 1'
        """
        text = str(self)
        if old == new or not text.startswith((old + ".", old + ":")):
            return self
        error = copy.copy(self)
        error.args = (new + text[len(old):],)
        return error


class DataError(DepthLightningError):
    """A data file that is missing, unreadable or not in the expected layout."""


class CheckpointError(DepthLightningError):
    """A checkpoint that is missing, unsafe or of the wrong kind."""


class DiskFullError(DepthLightningError):
    """The disk filled while writing a file."""


class Stopped(DepthLightningError):
    """Training stopped by a signal after saving a resumable checkpoint; the command line
    exits with 128 + the signal's number and prints the `resume=` command."""

    def __init__(self, signum: int, where: str) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name} {where}")


def first_line(e: BaseException) -> str:
    """An exception's message as one line for a user: its first non-empty line, spaces
    collapsed, or the exception's type when it has no message.

    Example:
        >>> first_line(ValueError("bad value\\n  details  here"))
        'bad value'
        >>> first_line(KeyError())
        'KeyError'
    """
    for line in str(e).splitlines():
        if line.strip():
            return " ".join(line.split())
    return type(e).__name__


def user_error(e: BaseException | None) -> DepthLightningError | None:
    """The DepthLightningError behind `e` (itself, or its cause or context, as when Hydra's
    instantiate or Lightning wraps it), else None."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, DepthLightningError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def user_cause(e: BaseException) -> BaseException:
    """What to tell a user about `e`: the DepthLightningError behind it if there is one, else
    the exception that Hydra's InstantiationException wrappers were raised around (a plug-in's
    own error)."""
    problem = user_error(e)
    if problem is not None:
        return problem
    from hydra.errors import InstantiationException

    while isinstance(e, InstantiationException) and (e.__cause__ or e.__context__):
        e = e.__cause__ or e.__context__
    return e
