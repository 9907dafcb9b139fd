"""The one exception type for failures a user must see and can fix."""


class ToolkitError(Exception):
    """A user-facing failure: its message is one line naming the file and the problem.

    Commands print it as ``<tool>: <message>`` and exit non-zero; no traceback
    unless the user asked for ``--debug``.
    """


def unexpected(exc: BaseException) -> str:
    """One line for an exception no reader expected: its type (which says more than its text) and text."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
