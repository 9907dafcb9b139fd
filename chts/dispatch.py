"""Pick the tool from the name the zipapp runs under; busybox style under any other name.

This runs before every runc call an engine makes, so it imports nothing and hands
the shim and the marker their argv straight away.
"""

import sys

from chts import CTK, MARKER, SHIM, TOOL_NAMES

USAGE = """\
usage: container-hooks-toolkit.pyz TOOL [ARGS...]

TOOL is one of (or install the file under these names, see `ctk install`):
  runtime  | container-hooks-runtime   the runc shim that adds hooks on create
  ctk      | container-hooks-ctk       the admin CLI (try: ctk --help)
  marker   | container-hooks           a no-op marker hook (exits 0)
"""

ALIASES = {SHIM: SHIM, "runtime": SHIM, CTK: CTK, "ctk": CTK, MARKER: MARKER, "marker": MARKER}


def run_tool(tool: str, argv: "list[str]", self_path: str) -> int:
    if tool == SHIM:
        from chts.shim import main as shim

        return shim.main(argv, self_path)
    if tool == MARKER:
        if argv[1:2] in (["--version"], ["-v"]):
            from chts import __version__

            sys.stdout.write(f"{MARKER} {__version__}\n")
        return 0
    from chts.ctk.main import main as ctk_main

    sys.argv = argv
    return ctk_main(argv[1:])


def main() -> int:
    argv = sys.argv
    self_path = argv[0]
    name = argv[0].rpartition("/")[2]
    if name in TOOL_NAMES:
        return run_tool(name, argv, self_path)
    if name[:2].isdigit() and name[2:3] == "-" and name[:2].isascii():
        # NN-NAME: a runtime's NRI plugin directory started it, on the connection it passed (docs/nri.md).
        return run_tool(CTK, [CTK, "nri", "run", *argv[1:]], self_path)
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if len(argv) >= 2 else 2
    if argv[1] in ("-v", "--version"):
        from chts import __version__

        sys.stdout.write(f"container-hooks-toolkit {__version__}\n")
        return 0
    tool = ALIASES.get(argv[1])
    if tool is None:
        sys.stderr.write(f"container-hooks-toolkit: unknown tool {argv[1]!r}\n{USAGE}")
        return 2
    return run_tool(tool, [tool] + argv[2:], self_path)
