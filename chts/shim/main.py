"""container-hooks-runtime: add the configured hooks on create/run/restore, then exec runc.

Every runc call an engine makes goes through here, so this module reads top to
bottom and imports only interpreter builtins (posix, marshal via chts.shim.cache)
until it knows the call is one that injects; everything else is exec'd as is.
Which module may import what, by tier, is written down in CONTRIBUTING.md ("The shim's
hot-path tiers") and enforced by tests/integration/test_hot_path.py.
"""

import posix
import sys

from chts import SHIM
from chts.base.runtime_lookup import FALLBACK_PATH, chain_tag, find_runtime
from chts.shim import cache, runtime_record
from chts.shim.argv import RuncCall, parse_runc_argv

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from chts.config.toolkit import Config


def config_path() -> str:
    value = posix.environ.get(b"CONTAINER_HOOKS_CONFIG")
    if value:
        return value.decode("utf-8", "surrogateescape")
    return "/etc/container-hooks/config.toml"


def fail(message: str, call: RuncCall, config: "Optional[Config]" = None) -> int:
    """Report a failure where the engine looks (stderr, runc's --log) and in the shim's log; return 1.

    The one exit of every failure, so that each is exactly one line in each place.
    """
    from chts.shim import log as shim_log

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
        runtime_record.renew(
            config_path(), settings["runtimes"], settings["log-level"] == "debug", settings.get("chains")
        )
        if call.creates:
            from chts.shim import inject

            try:
                inject.inject(call, config, config_error)
            except inject.InjectError as exc:
                return fail(str(exc), call, config)
        elif call.debug or config["container-hooks-runtime"]["log-level"] == "debug":
            from chts.shim import log as shim_log

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
        from chts.config import toolkit as toolkit_config
        from chts.errors import unexpected

        return toolkit_config.default_config(), f"{path}: cannot use the toolkit config: {unexpected(exc)}"


def exec_runtime(args: "List[str]", self_path: str, call: RuncCall, config: "Optional[Config]") -> int:
    """Replace this process with the runtime; return 1 (after fail()) only when that is impossible."""
    if config is None:
        config, _ = load_config()
    candidates = config["container-hooks-runtime"]["runtimes"]
    tag = chain_tag(self_path)
    if tag is not None:  # exactly the binary configure chained this name to: no list, no $PATH
        binary = config["container-hooks-runtime"].get("chains", {}).get(tag)
        if binary is None:
            return fail(
                f"no [container-hooks-runtime.chains] {tag} in {config_path()}, the runtime {SHIM}.{tag} execs "
                f"(container-hooks-ctk runtime configure writes it)",
                call,
                config,
            )
        runtime = find_runtime([binary], self_path)
        if runtime is None:
            return fail(f"{binary}, the runtime {SHIM}.{tag} execs, is not an executable file", call, config)
    else:
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
    dispositions = [(number, signals.signal(number, signals.SIG_DFL)) for number in (signals.SIGPIPE, signals.SIGXFSZ)]
    try:
        posix.execv(runtime, [runtime, *args])
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
    finally:
        # The exec failed: the shim's own report runs with Python's dispositions again, else a stderr
        # nobody reads kills it (SIGPIPE) before runc's --log and the shim's log have the line.
        for number, disposition in dispositions:
            signals.signal(number, disposition)
    return fail(f"cannot execute {runtime}: {reason}", call, config)
