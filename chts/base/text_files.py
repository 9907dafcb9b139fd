"""Reading small text files and TOML: every way one can be unusable becomes one line naming it."""

from __future__ import annotations

import sys

from chts.base.file_trust import decode_small_text
from chts.errors import ToolkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple, Type


def toml_loads(text: str) -> Dict[str, Any]:
    """Parse TOML with the stdlib's tomllib where there is one, else the bundled tomli.

    The one TOML reader of the tools and the shim: a document nested deeper than
    chts.base.nesting.MAX_DEPTH (or than the parser's recursion reaches) is NestedTooDeeply,
    one of the errors ``toml_decode_error()`` names.
    """
    from chts.base.nesting import TOML_WORDS, NestedTooDeeply, check_depth, toml_text_depth

    try:
        if sys.version_info >= (3, 11):
            import tomllib

            document = tomllib.loads(text)
        else:
            import tomli

            document = tomli.loads(text)
    except RecursionError:
        raise NestedTooDeeply(TOML_WORDS, toml_text_depth(text)) from None
    result: Dict[str, Any] = check_depth(document, TOML_WORDS)
    return result


def toml_decode_error() -> Tuple[Type[Exception], ...]:
    """What ``toml_loads`` raises for a text it refuses (for ``except``)."""
    from chts.base.nesting import NestedTooDeeply

    if sys.version_info >= (3, 11):
        import tomllib

        return (tomllib.TOMLDecodeError, NestedTooDeeply)
    import tomli

    return (tomli.TOMLDecodeError, NestedTooDeeply)


def read_text_file(path: str, limit: int, what: str) -> str:
    """Read a small UTF-8 text file, turning every way it can be unusable into one clear error."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise ToolkitError(f"{path}: is a directory, expected a {what} file") from None
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot read: {exc.strerror}") from None
    return decode_small_text(path, data, limit, f"{what} file")
