"""runc's argv as runc 1.1 reads it (urfave/cli 1.22 on Go's flag package): which call it is, and whether it creates.

Builtins only: every runc call an engine makes is parsed here before anything else is loaded.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

INJECTING_COMMANDS = ("create", "run", "restore")

# runc's global flags (urfave/cli v1.22 on Go's flag package, runc 1.0-1.2). Any spelling:
# --x v, --x=v, -x v, -x=v. A value flag takes the next word whatever it looks like; a boolean
# flag never does, and takes a value only as -x=VALUE, one of GO_TRUE or GO_FALSE (else runc
# refuses the call). urfave/cli's own --help/-h and --version/-v act only when true.
GLOBAL_VALUE_FLAGS = frozenset(("root", "log", "log-format", "criu", "rootless"))
GLOBAL_BOOL_FLAGS = frozenset(("debug", "systemd-cgroup", "help", "h", "version", "v"))
GO_TRUE = frozenset(("1", "t", "T", "true", "TRUE", "True"))  # Go's strconv.ParseBool
GO_FALSE = frozenset(("0", "f", "F", "false", "FALSE", "False"))
# Options with two names: giving both makes urfave/cli refuse the call ("Cannot use two forms").
SHORT_NAMES = {"b": "bundle", "d": "detach", "h": "help", "v": "version"}
# The options of create, run and restore, by command: (value options, boolean options); the
# union over runc 1.0 to today ("config" and "pidfd-socket" are newer than 1.1), so an option of
# some version never stops an injection. An option of none makes runc refuse create and run
# ("flag provided but not defined"). restore has many more, varying with CRIU support: there an
# unknown option counts as a boolean of some version (a hook left out is worse than a
# config.json edited for nothing).
_CREATE_VALUES = ("bundle", "b", "config", "console-socket", "pidfd-socket", "pid-file", "preserve-fds")
_RESTORE_BOOLS = (
    "tcp-established",
    "ext-unix-sk",
    "shell-job",
    "file-locks",
    "detach",
    "d",
    "no-subreaper",
    "no-pivot",
)
_RESTORE_VALUES = ("image-path", "work-path", "manage-cgroups-mode", "empty-ns", "lsm-profile", "lsm-mount-context")
COMMAND_FLAGS = {
    "create": (frozenset(_CREATE_VALUES), frozenset(("no-pivot", "no-new-keyring", "help", "h"))),
    "run": (
        frozenset(_CREATE_VALUES),
        frozenset(("detach", "d", "keep", "no-subreaper", "no-pivot", "no-new-keyring", "help", "h")),
    ),
    "restore": (
        frozenset((*_CREATE_VALUES, *_RESTORE_VALUES, "page-server", "status-fd")),
        frozenset((*_RESTORE_BOOLS, "auto-dedup", "lazy-pages", "help", "h")),
    ),
}
COMMAND_VALUE_FLAGS = frozenset(name for values, _ in COMMAND_FLAGS.values() for name in values)


class RuncCall:
    """What the shim needs to know about one runc argv (everything after argv[0])."""

    __slots__ = (
        "bundle",
        "command",
        "command_index",
        "config",
        "container_id",
        "creates",
        "debug",
        "log",
        "log_format",
    )

    def __init__(self) -> None:
        self.command = ""  # "" when there is none (runc --version, runc --help, runc)
        self.command_index = -1
        self.bundle = "."  # runc's default: the current directory
        self.config = ""  # --config (newer runc): the spec file, else the bundle's config.json
        self.container_id = ""
        self.log = ""
        self.log_format = "text"
        self.debug = False
        # True only when runc will really create a container from this argv: an injecting
        # command, no help or version flag, every option known and given its value, one id.
        self.creates = False

    def spec_path(self) -> str:
        """The spec file runc reads: --config (relative to the bundle, where runc works), else config.json."""
        name = self.config or "config.json"
        if name.startswith("/"):
            return name
        return self.bundle + (name if self.bundle.endswith("/") else "/" + name)


def _split_flag(arg: str) -> "Tuple[str, Optional[str]]":
    """Go's flag syntax: '-x', '--x', '-x=v', '--x=v' -> (name, value or None).

    A name that is empty or starts with '-' or '=' ("---x", "-=v") is Go's "bad flag syntax":
    it is returned as "" and refused by every caller."""
    name = arg[2:] if arg[1] == "-" else arg[1:]
    if "=" in name[1:]:  # Go looks for "=" after the first character
        name, _, value = name.partition("=")
        return name, value
    if not name or name[0] in "-=":
        return "", None
    return name, None


def _go_bool(value: "Optional[str]") -> "Optional[bool]":
    """A boolean flag's value as Go's flag package reads it: none is true; None: runc refuses it."""
    if value is None or value in GO_TRUE:
        return True
    return False if value in GO_FALSE else None


def _go_int(value: str) -> bool:
    """Whether Go's strconv.ParseInt(value, 0, 64) takes ``value`` (an IntFlag: --preserve-fds)."""
    digits = value[1:] if value[:1] in ("+", "-") else value
    if not digits:
        return False
    base, body = 10, digits
    if digits[0] == "0":
        if len(digits) >= 3 and digits[1] in "bBoOxX":
            base, body = {"b": 2, "o": 8, "x": 16}[digits[1].lower()], digits[2:]
        else:
            base, body = 8, digits[1:]
    number = 0
    for char in body:
        if char != "_":
            digit = int(char, 36) if char.isascii() and char.isalnum() else 36
            if digit >= base:
                return False
            number = number * base + digit
    if "_" in body and not _underscores_ok(digits):
        return False
    return number <= (1 << 63) - (value[0] != "-")


def _underscores_ok(digits: str) -> bool:
    """Go's underscoreOK: an underscore only between digits, or after a base prefix."""
    seen = "^"  # "0": a digit or the base prefix, "_": an underscore, "!": anything else
    start = 0
    hexadecimal = False
    if len(digits) >= 2 and digits[0] == "0" and digits[1] in "bBoOxX":
        start, seen, hexadecimal = 2, "0", digits[1] in "xX"
    for char in digits[start:]:
        if "0" <= char <= "9" or (hexadecimal and char in "abcdefABCDEF"):
            seen = "0"
        elif char == "_":
            if seen != "0":
                return False
            seen = "_"
        elif seen == "_":
            return False
        else:
            seen = "!"
    return seen != "_"


def _reorder(args: "Sequence[str]", command: str) -> "List[str]":
    """urfave/cli 1.22's reorderArgs: a command's known options (and the word after each one
    without "=", unless that word is a known option) go before its other words; "--" and all
    after it go last, the other words after that "--". A boolean option takes that word too:
    Go's flag package then stops at it (`create --no-pivot x --pid-file p` has three arguments).
    """
    values, bools = COMMAND_FLAGS[command]
    options: List[str] = []
    others: List[str] = []
    takes_next = False
    for index, arg in enumerate(args):
        known = _is_option(arg, values, bools)
        if takes_next and not known:
            takes_next = False
            options.append(arg)
        elif arg == "--":
            others = ["--", *others, *args[index + 1 :]]
            break
        elif known:
            options.append(arg)
            takes_next = "=" not in arg
        else:
            others.append(arg)
    return options + others


def _is_option(arg: str, values: "FrozenSet[str]", bools: "FrozenSet[str]") -> bool:
    """urfave/cli 1.22's argIsFlag: drop two dashes (anywhere: Go's strings.Replace), then one, then "=..."."""
    if arg in ("-", "--") or arg[:1] != "-":
        return False
    if arg.startswith("--"):
        arg = arg.replace("-", "", 2)
    if arg.startswith("-"):
        arg = arg.replace("-", "", 1)
    name = arg.partition("=")[0]
    return name in values or name in bools


def parse_runc_argv(args: "Sequence[str]") -> RuncCall:
    """Parse runc's argv the way runc 1.1 (urfave/cli 1.22 on Go's flag package) does."""
    call = RuncCall()
    count = len(args)
    runs_command = True  # False: runc prints help or its version, or refuses the global flags
    shown: Dict[str, str] = {}  # help/version: the form given (runc refuses both forms) ...
    showing: Dict[str, bool] = {}  # ... and its last value
    i = 0
    while i < count:
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or arg[0] != "-":
            break
        name, value = _split_flag(arg)
        i += 1
        if name in GLOBAL_VALUE_FLAGS:
            if value is None:
                if i >= count:
                    return call  # runc will complain about the missing value
                value = args[i]
                i += 1
            if name == "log":
                call.log = value
            elif name == "log-format":
                call.log_format = value
            continue
        on = _go_bool(value) if name in GLOBAL_BOOL_FLAGS else None
        if name == "debug":
            call.debug = on is True  # as chts/start.sh reads it: a value runc refuses is not debug
        if on is None:
            runs_command = False  # a flag runc does not know, or not a boolean value: refused
        elif name not in ("debug", "systemd-cgroup"):
            long_name = SHORT_NAMES.get(name, name)
            runs_command = runs_command and shown.setdefault(long_name, name) == name
            showing[long_name] = on
    if i >= count:
        return call
    call.command = args[i]
    call.command_index = i
    if call.command not in INJECTING_COMMANDS:
        return call
    creates = _parse_command(call, _reorder(args[i + 1 :], call.command))
    call.creates = runs_command and not any(showing.values()) and creates
    return call


def _parse_command(call: RuncCall, args: "List[str]") -> bool:
    """Read create/run/restore's options and arguments (already reordered) into ``call``, as
    Go's flag package does; True when runc accepts them, asks no help, and gets one id."""
    values, bools = COMMAND_FLAGS[call.command]
    lenient = call.command == "restore"
    forms: Dict[str, str] = {}
    helps: Dict[str, bool] = {}
    positional: Sequence[str] = ()
    count = len(args)
    i = 0
    while i < count:
        arg = args[i]
        if arg == "--":
            positional = args[i + 1 :]
            break
        if len(arg) < 2 or arg[0] != "-":
            positional = args[i:]
            break
        name, value = _split_flag(arg)
        i += 1
        if not name:
            return False  # bad flag syntax
        if name in values:
            if value is None:
                if i >= count:
                    return False  # runc: "flag needs an argument"
                value = args[i]
                i += 1
            if name in ("bundle", "b"):
                call.bundle = value or "."
            elif name == "config":
                call.config = value
            elif name == "preserve-fds" and not _go_int(value):
                return False
        elif name in bools:
            on = _go_bool(value)
            if on is None:
                return False
            if name in ("help", "h"):
                helps[name] = on
        elif not lenient:
            return False  # runc: "flag provided but not defined"
        long_name = SHORT_NAMES.get(name, name)
        if forms.setdefault(long_name, name) != name:
            return False  # runc: "Cannot use two forms of the same flag"
    if positional:
        call.container_id = positional[0]
    return not any(helps.values()) and len(positional) == 1
