"""Write the compiled-module cache that chts.boot reads (the first start after an install).

Best effort and never in the way: any failure leaves the cache absent and the
modules are imported from the archive as usual. The file is written whole to a
temporary name and renamed, so a concurrent start reads the old file or the new.
"""

import marshal
import posix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Tuple

O_CLOEXEC: int = posix.O_CLOEXEC  # type: ignore[attr-defined]  # missing from the posix stub
SITE = "site-packages/"
# Only what the shim and the marker run: the admin CLI and the TOML libraries stay in
# the archive, which keeps the file every runc call reads and unmarshals small.
CACHED = "site-packages/chts/"
NOT_CACHED = ("site-packages/chts/ctk/", "site-packages/chts/engines/")


def compile_archive(archive: str) -> "Dict[str, Tuple[bool, bytes]]":
    """module name -> (is package, marshalled code) of the shim's modules in the archive."""
    import zipfile

    blobs = {}
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


def store(archive: str, where: "Tuple[str, str]", signature: "Callable[[str], Tuple[int, ...]]") -> None:
    directory, path = where
    try:
        try:
            posix.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        st = posix.stat(directory)
        if st.st_uid != posix.geteuid() or st.st_mode & 0o022:
            return
        data = memoryview(marshal.dumps((signature(archive), compile_archive(archive))))
    except Exception:
        return
    tmp = f"{path}.{posix.getpid()}.tmp"
    try:
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | O_CLOEXEC, 0o600)
        try:
            while data:
                data = data[posix.write(fd, data) :]
        finally:
            posix.close(fd)
        posix.rename(tmp, path)
    except Exception:
        try:
            posix.unlink(tmp)
        except OSError:
            pass
