"""`container-hooks-ctk check`: a doctor for this host, from the installed files to a real container.

Each finding is one line, PASS / WARN / FAIL / SKIP; the exit status is 1 when any
line is FAIL. The container check runs a throw-away container through the shim
with a probe hook of its own (never the host's real hooks), with runc state in a
private --root, and removes everything it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from chts import DEFAULT_NRI_SOCKET, SHIM, TOOL_NAMES
from chts.base.archive import running_archive
from chts.base.runtime_lookup import FALLBACK_PATH, chain_tag, find_runtime
from chts.config.toolkit import chains_of, default_config, load_config, runtimes_of
from chts.ctk.chaining import chain_report
from chts.ctk.engine_usage import engine_usage
from chts.ctk.nri_check import check_nri
from chts.ctk.toolkit_files import add_command, add_config_option, chosen_config_path
from chts.engines import ENGINE_MODULES, get_engine
from chts.errors import ToolkitError
from chts.hooks.problems import source_errors, split_skipped, unusable_hook_paths
from chts.hooks.sources import scan_hook_sources
from chts.node.probe import run_probe_container
from chts.nri import DEFAULT_STATE_DIR, STATE_DIR_VARIABLE, default_state_dir

if TYPE_CHECKING:
    from chts.config.toolkit import Config

EPILOG = """\
examples:
  sudo container-hooks-ctk check
  ./container-hooks-toolkit.pyz ctk check --no-container       # files and config only
  CONTAINER_HOOKS_CONFIG=/tmp/t/config.toml ./container-hooks-toolkit.pyz ctk check --dest /tmp/t/bin
  container-hooks-ctk check --docker-config /tmp/daemon.json --containerd-config /tmp/containerd.toml
  container-hooks-ctk check --no-container --nri-socket /run/private/nri.sock   # NRI mode elsewhere

Lines are PASS, WARN (works, but look), FAIL (broken: exit status 1) or SKIP (not
checked, with the reason). The container check needs root and a runc; it uses its
own probe hook and a private runc --root, and removes everything it made.

NRI mode (docs/nri.md) is optional: its lines ("nri ...": the NRI socket, NRI in containerd's
`config dump` and CRI-O's `crio config`, the plugin's state file) never FAIL; a WARN is a
contradiction (a plugin state says registered but its process is gone, a plugin running while
the runtime has NRI disabled).
"""

SHIM_LINKS_PREFIX = "container-hooks-check-shim-"


class Report:
    """Prints one line per finding (or, with --format json, one JSON document at the end) and
    remembers whether any failed."""

    def __init__(self, quiet: bool, as_json: bool = False) -> None:
        self.quiet = quiet
        self.as_json = as_json
        self.failed = False
        self.findings: List[Dict[str, str]] = []
        self.facts: Dict[str, Any] = {}  # more for programs, in the JSON document (NRI mode: "nri")

    def line(self, status: str, subject: str, detail: str) -> None:
        self.failed = self.failed or status == "FAIL"
        self.findings.append({"status": status, "subject": subject, "detail": detail})
        if self.as_json:
            return
        if not self.quiet or status == "FAIL":
            print(f"{status:<4}  {subject}: {detail}")
        sys.stdout.flush()  # the container check takes a while: show what is known so far

    def finish(self) -> int:
        """Say the outcome; the exit status: 1 when any check failed."""
        if self.as_json:
            print(json.dumps({"passed": not self.failed, "checks": self.findings, **self.facts}))
        elif not self.quiet:
            print("check: FAILED" if self.failed else "check: passed")
        return 1 if self.failed else 0


# ----------------------------------------------------------------------------- files and config


def check_installation(report: Report, dest: str) -> Optional[str]:
    """The three names in ``dest`` must be one file; returns the installed shim, if there is one."""
    paths = {name: os.path.join(dest, name) for name in TOOL_NAMES}
    missing = [name for name, path in paths.items() if not os.path.exists(path)]
    if len(missing) == len(paths):
        report.line("WARN", "installation", f"none of {', '.join(TOOL_NAMES)} in {dest} (container-hooks-ctk install)")
        return None
    if missing:
        report.line("FAIL", "installation", f"missing in {dest}: {', '.join(missing)} (container-hooks-ctk install)")
        return None
    real = {name: os.path.realpath(path) for name, path in paths.items()}
    if len(set(real.values())) > 1:
        where = ", ".join(f"{name} -> {target}" for name, target in real.items())
        report.line("FAIL", "installation", f"the three names are not one file: {where}")
        return None
    target = next(iter(real.values()))
    if not os.access(target, os.X_OK):
        report.line("FAIL", "installation", f"{target} is not executable (chmod 755 {target})")
        return None
    report.line("PASS", "installation", f"{', '.join(TOOL_NAMES)} in {dest} are one file: {target}")
    running = running_archive()
    if running and os.path.realpath(running) != target and not same_content(running, target):
        report.line("WARN", "installation", f"{target} differs from the running {running} (install it again?)")
    return paths[SHIM]


def same_content(first: str, second: str) -> bool:
    with open(first, "rb") as one, open(second, "rb") as other:
        return one.read() == other.read()


def check_config(report: Report, path: str) -> Optional[Config]:
    try:
        config = load_config(path)
    except ToolkitError as exc:
        report.line("FAIL", "config", f"{exc} (the shim fails every create until this is fixed)")
        return None
    report.line("PASS", "config", path if os.path.lexists(path) else f"{path} absent: the defaults apply")
    return config


def check_hooks(report: Report, config: Config) -> None:
    planned, sources, problems = scan_hook_sources(config)
    errors, skipped = split_skipped(problems)
    errors = source_errors(config, errors)
    for problem in skipped:
        report.line("WARN", "hooks", f"{problem}; every create warns about it")
    skip = config["container-hooks"]["on-error"] == "skip"
    for error in errors:
        effect = "the shim skips it (on-error = skip)" if skip else "every create fails (on-error = fail)"
        report.line("WARN" if skip else "FAIL", "hooks", f"{error}; {effect}")
    missing = unusable_hook_paths(planned)
    for problem in missing:
        report.line("FAIL", "hooks", f"{problem}: runc fails every container it applies to")
    if not errors and not missing and not skipped:
        report.line("PASS", "hooks", f"{len(planned)} hook(s) from {len(sources)} source(s), all valid")


def runtime_version(runtime: str) -> str:
    try:
        result = subprocess.run([runtime, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "version unknown"
    return (result.stdout.splitlines() or ["version unknown"])[0]


def check_runtime(report: Report, config: Config, shim: str) -> Optional[str]:
    candidates = runtimes_of(config)
    runtime = find_runtime(candidates, shim)
    if runtime is None:
        report.line(
            "FAIL",
            "low-level runtime",
            f"none of {', '.join(candidates)} found in $PATH or {FALLBACK_PATH} "
            "(install runc, or set [container-hooks-runtime] runtimes)",
        )
        return None
    report.line("PASS", "low-level runtime", f"the shim would exec {runtime} ({runtime_version(runtime)})")
    return runtime


def check_engines(
    report: Report,
    configs: Dict[str, str],
    shims: List[str],
    source: str = "auto",
    toolkit_config: str = "",
    runtime: Optional[str] = None,
) -> None:
    configured = 0
    for engine, path in configs.items():
        try:
            usage = engine_usage(engine, path, shims, source)
        except ToolkitError as exc:
            report.line("WARN", engine, f"cannot tell: {exc}")
            continue
        if usage is None:
            report.line("SKIP", engine, f"no {path}: not installed or not configured here")
            continue
        if not usage.runtimes:
            hint = f"container-hooks-ctk runtime configure --runtime={engine}"
            report.line("WARN", engine, f"{path} (seen by {usage.source}): no runtime runs the shim ({hint})")
            continue
        configured += 1
        for name, binary in usage.runtimes.items():
            role = "the default" if usage.default == name else f"not the default ({usage.default or 'engine default'})"
            status = "PASS" if os.access(binary, os.X_OK) else "FAIL"
            missing = "" if status == "PASS" else ", which is not an executable file"
            runs, execs = engine_runtime_report(engine, path, binary, toolkit_config, runtime)
            status = runs if status == "PASS" else status
            where = f"{path}, seen by {usage.source}"
            report.line(status, engine, f"runtime {name!r} runs {binary}{missing}; {role} ({where}); {execs}")
    if not configured:
        report.line("WARN", "engines", "no engine on this host is configured to use the shim yet")


def engine_runtime_report(
    engine: str, engine_config: str, entry: str, toolkit_config: str, runtime: Optional[str]
) -> Tuple[str, str]:
    """(PASS/WARN/FAIL, what to say) about the binary ``engine``'s containers run through the shim at ``entry``.

    ``container-hooks-runtime.TAG`` execs ``[container-hooks-runtime.chains] TAG`` and nothing else
    (chts.ctk.chaining); the plain name execs ``runtime``, the shim's pick from its runtimes list.
    """
    tag = chain_tag(entry)
    if tag is None:
        chained, execs = chain_report(engine, engine_config, toolkit_config, runtime)
        return "PASS" if chained else "WARN", execs
    try:
        binary = chains_of(load_config(toolkit_config)).get(tag)
    except ToolkitError as exc:
        return "FAIL", f"its containers fail: {exc}"
    if binary is None:
        return "FAIL", f"its containers fail: {toolkit_config} has no [container-hooks-runtime.chains] {tag}"
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return "FAIL", f"its containers fail: {binary}, chained as {tag}, is not an executable file"
    return "PASS", f"its containers run {binary} ({runtime_version(binary)}), chained as {tag}"


# ----------------------------------------------------------------------------- the container


def describe(shim: str) -> str:
    """The shim as the user knows it, rather than the temporary link this check runs it through."""
    if os.path.basename(os.path.dirname(shim)).startswith(SHIM_LINKS_PREFIX):
        running = running_archive()
        return f"{running} as {SHIM}" if running else f"this checkout as {SHIM}"
    return shim


def shim_to_run(installed: Optional[str], work_links: str) -> str:
    """The installed shim, else this very .pyz (or checkout) under the shim's name."""
    if installed:
        return installed
    link = os.path.join(work_links, SHIM)
    running = running_archive()
    if running:
        os.symlink(running, link)
    else:  # a source checkout: `python -m chts runtime` behaves as the installed name does
        checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(link, "w", encoding="utf-8") as handle:
            handle.write(f'#!/bin/sh\nPYTHONPATH="{checkout}" exec "{sys.executable}" -m chts runtime "$@"\n')
        os.chmod(link, 0o755)
    return link


def check_container(report: Report, args: argparse.Namespace, installed: Optional[str], config: Config) -> None:
    if args.no_container:
        report.line("SKIP", "container", "--no-container")
        return
    if os.geteuid() != 0:
        report.line("SKIP", "container", "running a container needs root (sudo container-hooks-ctk check)")
        return
    links = tempfile.mkdtemp(prefix=SHIM_LINKS_PREFIX)
    try:
        shim = shim_to_run(installed, links)
        runtime = find_runtime(runtimes_of(config), shim)
        if runtime is None:
            report.line("SKIP", "container", "no low-level runtime to run it with")
            return
        fired, detail = run_probe_container(shim, runtime, config, args.dest, describe(shim))
        report.line("PASS" if fired else "FAIL", "container", detail)
    except ToolkitError as exc:
        report.line("FAIL", "container", str(exc))
    finally:
        shutil.rmtree(links, ignore_errors=True)


# ----------------------------------------------------------------------------- the command


def run_check(args: argparse.Namespace) -> int:
    report = Report(args.quiet, args.format == "json")
    dest = os.path.abspath(args.dest)
    installed = check_installation(report, dest)
    config = check_config(report, chosen_config_path(args))
    if config is not None:
        check_hooks(report, config)
    usable = config or default_config()
    shim = installed or running_archive() or os.path.join(dest, SHIM)
    runtime = check_runtime(report, usable, shim)
    engine_configs = {engine: getattr(args, f"{engine}_config") for engine in ENGINE_MODULES}
    shims = [os.path.join(dest, SHIM), *(p for p in [installed] if p)]
    check_engines(report, engine_configs, shims, args.config_source, chosen_config_path(args), runtime)
    state_dir = args.nri_state_dir or default_state_dir()
    report.facts["nri"] = check_nri(report.line, engine_configs, args.config_source, args.nri_socket, state_dir)
    check_container(report, args, installed, usable)
    return report.finish()


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "check",
        "check this host end to end: files, config, hooks, runtime, engines, a real container",
        EPILOG,
        "Check the toolkit on this host end to end, ending with a throw-away container "
        "run through the shim with a probe hook.",
    )
    add_config_option(parser)
    parser.add_argument("--dest", default="/usr/bin", metavar="DIR", help="where the tools are installed")
    parser.add_argument("--no-container", action="store_true", help="skip running the throw-away container")
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help='text: one line per check (default); json: one document at the end, {"passed": bool, "checks": '
        '[{"status": PASS|WARN|FAIL|SKIP, "subject", "detail"}]}, for programs (the node installer reads it)',
    )
    for engine in ENGINE_MODULES:
        default = get_engine(engine).default_config
        parser.add_argument(
            f"--{engine}-config", default=default, metavar="PATH", help=f"{engine}'s config (default: %(default)s)"
        )
    parser.add_argument(
        "--nri-socket",
        metavar="PATH",
        help=f"the runtime's NRI socket (default: the one the runtime's config names, else {DEFAULT_NRI_SOCKET})",
    )
    parser.add_argument(
        "--nri-state-dir",
        metavar="DIR",
        help=f"where `nri run` keeps its state file (default: ${STATE_DIR_VARIABLE}, else {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--config-source",
        choices=("auto", "file", "command"),
        default="auto",
        help="how to learn what each engine runs with: its own command (`containerd config dump`, `crio config`), "
        "its files read as it reads them, or `auto` (default): the command when the engine is installed",
    )
    parser.set_defaults(func=run_check)
