# Start-up of the zipapp in Python. build.py puts this file in front of the zip data, right
# after chts/start.sh, which execs `python3 -ISc PROGRAM archive args...` for every call
# that needs Python; PROGRAM execs the archive's first bytes (the sh text, a string to
# Python, and this file), so a call pays neither for runpy (importlib.util, contextlib,
# collections: ~4 ms) nor for zipimport (~2 ms) nor for shiv's bootstrap.
# `python3 x.pyz` runs the archive's __main__.py instead, which imports this module and calls run().
#
# The shim's modules come compiled from its cache directory (chts.code_cache writes
# and serves them); any doubt about that file (none, another archive, not ours
# alone) means plain zipimport. This file is compiled on every start, so it holds
# only what must run before cached code can: builtins, two functions, no class.

import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple


def cache_file(archive: str) -> "Tuple[str, str]":
    """(cache directory, file of compiled modules for ``archive`` and this interpreter)."""
    configured = posix.environ.get(b"CONTAINER_HOOKS_CACHE_DIR")
    directory = configured.decode("utf-8", "surrogateescape") if configured else "/run/container-hooks"
    digest = 0xCBF29CE484222325  # FNV-1a of the archive's path
    for byte in archive.encode("utf-8", "surrogateescape"):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return directory, f"{directory}/code-{sys.implementation.cache_tag}-{digest:016x}"


def give_back_lc_ctype() -> None:
    """Undo Python's C locale coercion (PEP 538: with the locale C it exports LC_CTYPE=C.UTF-8),
    so the runtime and the programs we run get the environment we were given. chts/start.sh
    passes the original in chts_ctype: empty when LC_CTYPE was unset, else "=" and its value."""
    env = posix.environ
    word = env.pop(b"chts_ctype", None)
    if word is None:  # not started by the sh (`python3 file.pyz`): nothing to go by
        return
    posix.unsetenv(b"chts_ctype")
    if word:
        env[b"LC_CTYPE"] = word[1:]
        posix.putenv(b"LC_CTYPE", word[1:])
    elif env.pop(b"LC_CTYPE", None) is not None:
        posix.unsetenv(b"LC_CTYPE")


def run(archive: str) -> None:
    """Serve the archive's modules (cached when possible), then run the tool argv[0] names."""
    give_back_lc_ctype()
    # Last on the path: every stdlib import would otherwise have zipimport read the
    # archive's directory first. Nothing of the stdlib is named like our packages.
    site = archive + "/site-packages"
    if site in sys.path:
        sys.path.remove(site)
    sys.path.append(site)
    served = False
    try:
        directory, path = cache_file(archive)
        st = posix.stat(directory)
        if st.st_uid == posix.geteuid() and not st.st_mode & 0o022:
            fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)  # type: ignore[attr-defined]
            try:
                st = posix.fstat(fd)
                ours = st.st_uid == posix.geteuid() and not st.st_mode & 0o022
                data = posix.read(fd, st.st_size + 1) if ours else b""
            finally:
                posix.close(fd)
            # The layout of chts.code_cache.layout(): stored, the archive's stat signature; index,
            # {module: (is_package, start, end)} in the blob area, the `size` bytes after the head.
            view = memoryview(data)
            head = 4 + int.from_bytes(view[:4], "little")
            stored, index, size = marshal.loads(view[4:head])
            blobs = view[head:]
            st = posix.stat(archive)
            if stored == (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev) and size == len(blobs):
                # chts.code_cache's own code, run here to serve every other module
                finder: Dict[str, Any] = {"__name__": "chts.code_cache"}
                _, start, end = index["chts.code_cache"]
                exec(marshal.loads(blobs[start:end]), finder)
                sys.meta_path.insert(0, finder["CachedModules"](index, blobs))
                served = True
    except Exception:  # no cache, or not one this start can use
        pass
    if not served:
        from chts import code_cache

        # Before main(): the shim never returns from it (it execs runc).
        code_cache.store(archive, cache_file(archive))
    from chts.dispatch import main

    sys.exit(main())


if __name__ == "__main__":  # exec'd by chts/start.sh's PROGRAM: argv is ["-c", archive, args...]
    del sys.argv[0]
    run(sys.argv[0])
