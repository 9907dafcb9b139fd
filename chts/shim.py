"""container-hooks-runtime: add the configured hooks on create/run/restore, then exec runc.

Every runc call an engine makes goes through here, so this module reads top to
bottom and imports only interpreter builtins (posix, marshal via chts.cache)
until it knows the call is one that injects; everything else is exec'd as is.
Which module may import what, by tier, is written down in CONTRIBUTING.md ("The shim's
hot-path tiers") and enforced by tests/integration/test_hot_path.py.
"""

import posix
import sys

from chts import SHIM, cache, runtime_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

    from chts.toolkit_config import Config

INJECTING_COMMANDS = ("create", "run", "restore")

# runc's global flags (urfave/cli v1 on Go's flag package, runc 1.0-1.2). Any spelling:
# --x v, --x=v, -x v, -x=v. A value flag takes the next word whatever it looks like.
GLOBAL_VALUE_FLAGS = frozenset(("root", "log", "log-format", "criu", "rootless"))
GLOBAL_BOOL_FLAGS = frozenset(("debug", "systemd-cgroup"))
HELP_FLAGS = frozenset(("help", "h"))
# Options of create / run / restore that take a value (union over runc 1.0 to today:
# "config" and "pidfd-socket" are newer than 1.1). The rest are booleans.
COMMAND_VALUE_FLAGS = frozenset(
    (
        "bundle",
        "b",
        "config",
        "console-socket",
        "pidfd-socket",
        "pid-file",
        "preserve-fds",
        "image-path",
        "work-path",
        "parent-path",
        "manage-cgroups-mode",
        "empty-ns",
        "lsm-profile",
        "lsm-mount-context",
        "page-server",
        "status-fd",
    )
)
# The boolean options of create and run in every runc version: any other option makes
# runc refuse the call ("flag provided but not defined"), so nothing is created. restore
# has many more, varying with CRIU support; there an unknown option is not held against
# the call (a hook left out is worse than a config.json edited for nothing).
CREATE_RUN_BOOL_FLAGS = frozenset(("no-pivot", "no-new-keyring", "detach", "d", "keep", "no-subreaper"))
FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
    """Go's flag syntax: '-x', '--x', '-x=v', '--x=v' -> (name, value or None)."""
    name = arg[2:] if arg[1] == "-" else arg[1:]
    if "=" in name:
        name, _, value = name.partition("=")
        return name, value
    return name, None


def parse_runc_argv(args: "Sequence[str]") -> RuncCall:
    """Parse runc's argv the way runc (urfave/cli v1 on Go's flag package) does."""
    call = RuncCall()
    count = len(args)
    runs_command = True  # False: runc prints help or its version, or refuses the global flags
    i = 0
    while i < count:
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or arg[0] != "-":
            break
        name, value = _split_flag(arg)
        if name in GLOBAL_VALUE_FLAGS and value is None:
            i += 1
            if i >= count:
                return call  # runc will complain about the missing value
            value = args[i]
        elif name not in GLOBAL_VALUE_FLAGS and name not in GLOBAL_BOOL_FLAGS:
            runs_command = False  # --help, --version, or a flag runc refuses
        if name == "log":
            call.log = value or ""
        elif name == "log-format":
            call.log_format = value or ""
        elif name == "debug":
            call.debug = value is None or value.lower() in ("1", "t", "true")
        i += 1
    if i >= count:
        return call
    call.command = args[i]
    call.command_index = i
    if call.command not in INJECTING_COMMANDS:
        return call
    # urfave/cli v1 reorders a command's flags before its arguments, so options may
    # follow the container id; "--" ends the options.
    positional: List[str] = []
    complete = runs_command
    i += 1
    while i < count:
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if len(arg) < 2 or arg[0] != "-":
            positional.append(arg)
            continue
        name, value = _split_flag(arg)
        if name in COMMAND_VALUE_FLAGS and value is None:
            if i >= count:
                complete = False  # runc: "flag needs an argument"
                break
            value = args[i]
            i += 1
        elif name in HELP_FLAGS or (
            name not in COMMAND_VALUE_FLAGS and call.command != "restore" and name not in CREATE_RUN_BOOL_FLAGS
        ):
            complete = False
        if name in ("bundle", "b"):
            call.bundle = value or "."
        elif name == "config":
            call.config = value or ""
    if positional:
        call.container_id = positional[0]
    call.creates = complete and len(positional) == 1
    return call


def _stat_identity(path: str) -> "Optional[Tuple[int, int]]":
    try:
        st = posix.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _search_path() -> "List[str]":
    env = posix.environ
    path = env.get(b"PATH")
    dirs = path.decode("utf-8", "surrogateescape").split(":") if path else []
    for fallback in FALLBACK_PATH.split(":"):
        if fallback not in dirs:
            dirs.append(fallback)
    return [d or "." for d in dirs]


def find_runtime(candidates: "Sequence[str]", self_path: str) -> "Optional[str]":
    """The first candidate that is an executable file and not this shim itself, or None."""
    me = _stat_identity(self_path)
    search = None
    for candidate in candidates:
        if "/" in candidate:
            paths = [candidate]
        else:
            if search is None:
                search = _search_path()
            paths = [d + "/" + candidate for d in search]
        for path in paths:
            try:
                st = posix.stat(path)
            except (OSError, ValueError):
                continue
            if st.st_mode & 0o170000 != 0o100000 or not posix.access(path, posix.X_OK):
                continue
            if (st.st_dev, st.st_ino) == me:
                continue  # ourselves under another name: exec'ing it would loop
            return path
    return None


def config_path() -> str:
    value = posix.environ.get(b"CONTAINER_HOOKS_CONFIG")
    if value:
        return value.decode("utf-8", "surrogateescape")
    return "/etc/container-hooks/config.toml"


def fail(message: str, call: RuncCall, config: "Optional[Config]" = None) -> int:
    """Report a failure where the engine looks (stderr, runc's --log) and in the shim's log; return 1.

    The one exit of every failure, so that each is exactly one line in each place.
    """
    from chts import shim_log

    line = f"{SHIM}: {message}"
    shim_log.report_error(line, call.log, call.log_format)
    if config is not None:
        try:
            shim_log.open_log(config, call).error(message, id=call.container_id, bundle=call.bundle)
        except Exception:  # the shim's log is best effort: it never changes the outcome
            pass
    return 1


def silence_warnings() -> None:
    """No Python warning reaches stderr, whatever a module or an interpreter version warns about.

    Engines show the shim's stderr as the reason a container failed, so a FutureWarning
    from re ("Possible nested set") would stand there in place of the real one. The C
    module's filter list is what the warnings module adopts if it is ever imported.
    """
    import _warnings

    _warnings.filters.insert(0, ("ignore", None, Warning, None, 0))
    mutated = getattr(_warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()


def main(argv: "List[str]", self_path: str) -> int:
    """Inject on create, then exec the runtime; every failure ends in fail(), never in a traceback."""
    args = argv[1:]
    call = RuncCall()
    config: Optional[Config] = None
    try:
        silence_warnings()
        call = parse_runc_argv(args)
        config, config_error = load_config()
        settings = config["container-hooks-runtime"]
        # What lets the archive's sh start pass the next calls on without Python (chts/start.sh).
        runtime_record.renew(config_path(), settings["runtimes"], settings["log-level"] == "debug")
        if call.creates:
            from chts import inject

            try:
                inject.inject(call, config, config_error)
            except inject.InjectError as exc:
                return fail(str(exc), call, config)
        elif call.debug or config["container-hooks-runtime"]["log-level"] == "debug":
            from chts import shim_log

            shim_log.open_log(config, call).debug(f"passthrough: {' '.join(args)}")
    except Exception as exc:
        if call.creates:
            from chts.errors import unexpected

            return fail(f"{call.command} failed inside the shim: {unexpected(exc)}", call, config)
        # passthrough reaches the runtime whatever happened above
    return exec_runtime(args, self_path, call, config)


def load_config() -> "Tuple[Config, Optional[str]]":
    """(config, error): a broken config means the defaults, the error waiting for a create to show it.

    Passthrough must work whatever state the toolkit's files are in.
    """
    path = config_path()
    try:
        return cache.load_config(path)
    except Exception as exc:
        from chts import toolkit_config
        from chts.errors import unexpected

        return toolkit_config.default_config(), f"{path}: cannot use the toolkit config: {unexpected(exc)}"


def exec_runtime(args: "List[str]", self_path: str, call: RuncCall, config: "Optional[Config]") -> int:
    """Replace this process with the runtime; return 1 (after fail()) only when that is impossible."""
    if config is None:
        config, _ = load_config()
    candidates = config["container-hooks-runtime"]["runtimes"]
    runtime = find_runtime(candidates, self_path)
    if runtime is None:
        return fail(
            f"no low-level runtime found: tried {', '.join(candidates)} in $PATH and {FALLBACK_PATH} "
            f"(set [container-hooks-runtime] runtimes in {config_path()})",
            call,
            config,
        )
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream has nothing to flush
            pass
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec:
    # the runtime gets them at their default, as its engine (Go) starts it.
    signals = __import__("_signal")  # loaded by every interpreter's start; no stub for mypy
    for number in (signals.SIGPIPE, signals.SIGXFSZ):
        signals.signal(number, signals.SIG_DFL)
    try:
        posix.execv(runtime, [runtime, *args])
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return fail(f"cannot execute {runtime}: {reason}", call, config)
    return 1  # not reached
