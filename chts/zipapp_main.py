"""The zipapp's __main__ (build.py copies this file to the archive's top level).

It replaces shiv's bootstrap, which would import hashlib, zipfile, compileall and
friends and unpack the archive under ~/.shiv on every runc call: our packages are
pure Python and import straight from the archive's site-packages.

zipimport compiles modules from source on every start (it never writes bytecode),
which would be most of what the shim costs above a bare interpreter. So the chts
modules are compiled once into the shim's cache directory, keyed by the
interpreter's bytecode tag and the archive's stat signature, and served from there
by a meta-path finder, each only when imported. Any doubt (no cache, another
archive, a directory or file not ours alone) means plain zipimport.
Builtins only: posix, marshal, sys.
"""

import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
    from typing import Any, Dict, Optional, Sequence, Tuple

    Codes = Dict[str, Tuple[bool, CodeType]]

O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub

PACKAGE = "chts"
# The admin CLI's modules are not on the shim's path: leaving them out keeps the one
# blob every runc call reads and unmarshals small.
NOT_CACHED = ("site-packages/chts/ctk/", "site-packages/chts/engines/")


def _cache_path(archive: str) -> "Tuple[str, str]":
    configured = posix.environ.get(b"CONTAINER_HOOKS_CACHE_DIR")
    directory = configured.decode("utf-8", "surrogateescape") if configured else "/run/container-hooks"
    digest = 0xCBF29CE484222325
    for byte in archive.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return directory, f"{directory}/code-{sys.implementation.cache_tag}-{digest:016x}"


def _archive_signature(archive: str) -> "Tuple[int, ...]":
    st = posix.stat(archive)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def _ours(st: "posix.stat_result") -> bool:
    return st.st_uid == posix.geteuid() and not st.st_mode & 0o022


class CompiledModules:
    """A meta-path finder and loader for chts modules whose code objects are at hand."""

    def __init__(self, site: str, codes: "Codes") -> None:
        self.site = site
        self.codes = codes  # module name -> (is_package, code)

    def find_spec(self, name: str, path: "Optional[Sequence[str]]" = None, target: "Any" = None) -> "Any":
        entry = self.codes.get(name)
        if entry is None:
            return None
        is_package, code = entry
        spec = sys.modules["_frozen_importlib"].ModuleSpec(name, self, origin=code.co_filename, is_package=is_package)
        spec.has_location = True
        if is_package:
            spec.submodule_search_locations = [code.co_filename.rpartition("/")[0]]
        return spec

    def create_module(self, spec: "Any") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        exec(self.codes[module.__name__][1], module.__dict__)


def _load_cached(archive: str) -> "Optional[Codes]":
    try:
        directory, path = _cache_path(archive)
        if not _ours(posix.stat(directory)):
            return None
        fd = posix.open(path, posix.O_RDONLY | O_CLOEXEC)
        try:
            st = posix.fstat(fd)
            data = posix.read(fd, st.st_size + 1) if _ours(st) else b""
        finally:
            posix.close(fd)
        signature, codes = marshal.loads(data)
        assert isinstance(codes, dict)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    try:
        if signature != _archive_signature(archive):
            return None
    except OSError:
        return None
    return codes


def _compile_all(archive: str) -> "Codes":
    """Every chts module of the archive, compiled (the first start after an install)."""
    import zipfile

    codes: Codes = {}
    prefix = f"site-packages/{PACKAGE}/"
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if not (name.startswith(prefix) and name.endswith(".py")) or name.startswith(NOT_CACHED):
                continue
            module = name[len("site-packages/") : -len(".py")].replace("/", ".")
            is_package = module.endswith(".__init__")
            if is_package:
                module = module[: -len(".__init__")]
            source = zipped.read(name)
            codes[module] = (is_package, compile(source, f"{archive}/{name}", "exec", dont_inherit=True))
    return codes


def _store_cache(archive: str) -> None:
    """Fill the cache for the next starts; best effort, never in the way."""
    try:
        directory, path = _cache_path(archive)
        try:
            posix.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        if not _ours(posix.stat(directory)):
            return
        data = marshal.dumps((_archive_signature(archive), _compile_all(archive)))
        tmp = f"{path}.{posix.getpid()}"
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | O_CLOEXEC, 0o600)
        try:
            posix.write(fd, data)
        finally:
            posix.close(fd)
        posix.rename(tmp, path)
    except Exception:
        pass


def _main() -> int:
    archive = sys.path[0]
    site = archive + "/site-packages"
    sys.path[0] = site
    codes = _load_cached(archive)
    if codes is None:
        # Before main(): the shim never returns from it (it execs runc).
        _store_cache(archive)
    else:
        sys.meta_path.insert(0, CompiledModules(site, codes))
    from chts.dispatch import main

    return main()


sys.exit(_main())
