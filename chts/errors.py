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


# Ends the message of a hook file this toolkit cannot use although Podman reads it (or that
# Podman never injects either): the failure policy skips such a file with a warning even
# under on-error = "fail", so one such file never costs every container.
SKIPPED_FILE = " (this file is skipped whatever on-error says)"
