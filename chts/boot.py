# Start-up of the zipapp. build.py copies this file in front of the zip data, right
# after the shebang `#!/usr/bin/python3 -IScPROGRAM`: Linux passes "-IScPROGRAM" as
# one argument, and PROGRAM execs these first bytes of the archive, so a runc call
# pays neither for runpy (importlib.util, contextlib, collections: ~4 ms) nor for
# zipimport (~2 ms) nor for shiv's bootstrap. `python3 x.pyz` runs the archive's
# __main__.py instead, which imports this module and calls run().
#
# zipimport compiles modules from source on every start (it never writes bytecode),
# so the shim's modules are compiled once into its cache directory, keyed by the
# interpreter's bytecode tag and the archive's path and stat signature, and each is
# unmarshalled from there only when imported (chts.code_cache writes the file). Any
# doubt (no cache, another archive, a file or directory not ours alone) means plain
# zipimport. This file is compiled on every start and must not contain the bytes of
# a zip header: keep it short, builtins only (posix, marshal, sys).

import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Dict, Optional, Sequence, Tuple


def cache_file(archive: str) -> "Tuple[str, str]":
    """(cache directory, file of compiled modules for ``archive`` and this interpreter)."""
    configured = posix.environ.get(b"CONTAINER_HOOKS_CACHE_DIR")
    directory = configured.decode("utf-8", "surrogateescape") if configured else "/run/container-hooks"
    digest = 0xCBF29CE484222325  # FNV-1a of the archive's path
    for byte in archive.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return directory, f"{directory}/code-{sys.implementation.cache_tag}-{digest:016x}"


def signature(archive: str) -> "Tuple[int, ...]":
    st = posix.stat(archive)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def ours(st: "posix.stat_result") -> bool:
    """Owned by us and writable by no one else: what it holds runs as us."""
    return st.st_uid == posix.geteuid() and not st.st_mode & 0o022


class CachedModules:
    """A meta-path finder and loader of modules from {name: (is_package, marshalled code)}."""

    def __init__(self, blobs: "Dict[str, Tuple[bool, bytes]]") -> None:
        self.blobs = blobs

    def find_spec(self, name: str, path: "Optional[Sequence[str]]" = None, target: "Any" = None) -> "Any":
        entry = self.blobs.get(name)
        if entry is None:
            return None
        code = marshal.loads(entry[1])
        spec = sys.modules["_frozen_importlib"].ModuleSpec(name, self, origin=code.co_filename, is_package=entry[0])
        spec.has_location = True
        spec.loader_state = code
        if entry[0]:
            spec.submodule_search_locations = [code.co_filename.rpartition("/")[0]]
        return spec

    def create_module(self, spec: "Any") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        exec(module.__spec__.loader_state, module.__dict__)  # type: ignore[union-attr]


def load(archive: str) -> "Optional[Dict[str, Tuple[bool, bytes]]]":
    try:
        directory, path = cache_file(archive)
        if not ours(posix.stat(directory)):
            return None
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)  # type: ignore[attr-defined]
        try:
            st = posix.fstat(fd)
            data = posix.read(fd, st.st_size + 1) if ours(st) else b""
        finally:
            posix.close(fd)
        stored, blobs = marshal.loads(data)
        if stored != signature(archive) or not isinstance(blobs, dict):
            return None
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return blobs


def run(archive: str) -> None:
    """Serve the archive's modules (cached when possible), then run the tool argv[0] names."""
    # Last on the path: every stdlib import would otherwise have zipimport read the
    # archive's directory first. Nothing of the stdlib is named like our packages.
    site = archive + "/site-packages"
    if site in sys.path:
        sys.path.remove(site)
    sys.path.append(site)
    blobs = load(archive)
    if blobs is None:
        from chts import code_cache

        # Before main(): the shim never returns from it (it execs runc).
        code_cache.store(archive, cache_file(archive), signature)
    else:
        sys.meta_path.insert(0, CachedModules(blobs))
    from chts.dispatch import main

    sys.exit(main())


if __name__ == "__main__":  # exec'd by the shebang's program: argv is ["-c", archive, args...]
    del sys.argv[0]
    run(sys.argv[0])
