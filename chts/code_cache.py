"""The shim's compiled-module cache: written on the first start after an install, then served.

zipimport compiles modules from source on every start (it never writes bytecode),
most of what a runc call would cost above a bare interpreter. So the shim's modules
are compiled once into one file of the cache directory, keyed by the interpreter's
bytecode tag and the archive's path (chts.boot.cache_file) and stamped with the
archive's stat signature; chts.boot checks the file and runs this module's code
from it, and CachedModules unmarshals each other module only when it is imported.

Writing is best effort and never in the way: any failure leaves the cache absent
and the modules are imported from the archive as usual. The file is written whole
to a temporary name and renamed, so a concurrent start reads the old file or the new.
Builtins only: this module runs before any other.
"""

import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any, Dict, Optional, Sequence, Tuple

    Blobs = Dict[str, Tuple[bool, bytes]]
    # module -> (is package, start, end of its marshalled code in the file's blob area)
    Index = Dict[str, Tuple[bool, int, int]]

SITE = "site-packages/"
# Only what the shim runs: the admin CLI, the node installer and the TOML libraries stay in
# the archive, which keeps the file every Python start reads and unmarshals small.
CACHED = "site-packages/chts/"
NOT_CACHED = (
    "site-packages/chts/ctk/",
    "site-packages/chts/engines/",
    "site-packages/chts/node/",
)


class CachedModules:
    """A meta-path finder and loader of the modules ``index`` locates in ``blobs``."""

    def __init__(self, index: "Index", blobs: "memoryview") -> None:
        self.index = index
        self.blobs = blobs

    def find_spec(self, name: str, path: "Optional[Sequence[str]]" = None, target: "Any" = None) -> "Any":
        entry = self.index.get(name)
        if entry is None:
            return None
        is_package, start, end = entry
        code = marshal.loads(self.blobs[start:end])
        spec = sys.modules["_frozen_importlib"].ModuleSpec(name, self, origin=code.co_filename, is_package=is_package)
        spec.has_location = True
        spec.loader_state = code
        if is_package:
            spec.submodule_search_locations = [code.co_filename.rpartition("/")[0]]
        return spec

    def create_module(self, spec: "Any") -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        exec(module.__spec__.loader_state, module.__dict__)  # type: ignore[union-attr]


def signature(archive: str) -> "Tuple[int, ...]":
    """What changes when the archive is replaced or rewritten (chts.boot compares the same fields)."""
    st = posix.stat(archive)
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def compile_archive(archive: str) -> "Blobs":
    """module name -> (is package, marshalled code) of the shim's modules in the archive."""
    import zipfile

    blobs: Blobs = {}
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if not (name.startswith(CACHED) and name.endswith(".py")) or name.startswith(NOT_CACHED):
                continue
            module = name[len(SITE) : -len(".py")].replace("/", ".")
            is_package = module.endswith(".__init__")
            if is_package:
                module = module[: -len(".__init__")]
            code = compile(zipped.read(name), f"{archive}/{name}", "exec", dont_inherit=True)
            blobs[module] = (is_package, marshal.dumps(code))
    return blobs


def layout(stamp: "Tuple[int, ...]", blobs: "Blobs") -> bytes:
    """The file: the head's length (4 bytes, little-endian), the head, marshal of (stamp,
    index, size of the blob area), then the blob area.

    chts.boot unmarshals the small head, then each module's code where it lies in the
    bytes read, so a start copies no blob it does not run (about half of them).
    """
    index: Index = {}
    end = 0
    for module, (is_package, blob) in blobs.items():
        index[module] = (is_package, end, end + len(blob))
        end += len(blob)
    head = marshal.dumps((stamp, index, end))
    return len(head).to_bytes(4, "little") + head + b"".join(blob for _, blob in blobs.values())


def store(archive: str, where: "Tuple[str, str]") -> None:
    """Write the cache file ``where`` = (directory, path) for ``archive``."""
    directory, path = where
    try:
        try:
            posix.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        st = posix.stat(directory)
        if st.st_uid != posix.geteuid() or st.st_mode & 0o022:
            return
        data = layout(signature(archive), compile_archive(archive))
    except Exception:
        return
    try:
        # Written only on the first start after an install: the one writer may be imported then.
        from chts.base.atomic import write_atomically

        write_atomically(path, data, mode=0o600, durable=False, follow_symlinks=False)
    except Exception:
        pass
