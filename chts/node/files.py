"""The node installer's files on the host: the versioned .pyz behind one stable path, synced hooks, state, lock.

Layout under the toolkit directory (default /opt/container-hooks on the host):

    versions/container-hooks-toolkit-<version>-<sha12>.pyz   every build installed, the last two kept
    current.pyz -> versions/...                              switched by one atomic rename
    bin/container-hooks-runtime -> ../current.pyz            what the engine's BinaryName names: never changes
    bin/container-hooks-ctk, bin/container-hooks             likewise
    node-state.json                                          what uninstall needs to give the host back
    backup/                                                  host files that were there before the first sync

A container started before an upgrade keeps working: the engine execs bin/container-hooks-runtime by
path for every runc call, and that path resolves to a complete archive at every instant.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

from chts import CTK, SHIM, TOOL_NAMES, __version__
from chts.base.atomic import copy_atomically, read_bytes, symlink_atomically, write_atomically
from chts.base.config_files import parse_json_object
from chts.base.text_files import read_text_file
from chts.config.toolkit import DEFAULT_CONFIG_PATH, MAX_CONFIG_BYTES, parse_config
from chts.errors import ToolkitError
from chts.hooks.dropin import parse_dropin
from chts.hooks.model import parse_hooks_json
from chts.node.host import HostRoot

if TYPE_CHECKING:
    from chts.config.toolkit import Config

DEFAULT_TOOLKIT_DIR = "/opt/container-hooks"
HOST_CONFIG_DIR = os.path.dirname(DEFAULT_CONFIG_PATH)  # /etc/container-hooks
HOST_HOOKS = f"{HOST_CONFIG_DIR}/hooks.json"
HOST_HOOKS_DIR = f"{HOST_CONFIG_DIR}/hooks.d"
KEPT_VERSIONS = 2
LOCK_PATH = "/run/container-hooks-node.lock"
STATE_NAME = "node-state.json"
MAX_KEYS = 256
# The temporary file of chts.base.atomic's writers (.NAME.PID.tmp): one a killed run left is removed by the next
# run, which holds the node lock, so no other writer of these files is running.
TEMP_FILE = re.compile(r"\..+\.[0-9]+\.tmp")


def shim_path(toolkit_dir: str) -> str:
    """The stable host path the engine's runtime entry names."""
    return f"{toolkit_dir}/bin/{SHIM}"


def ctk_path(toolkit_dir: str) -> str:
    return f"{toolkit_dir}/bin/{CTK}"


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_directory(path: str) -> None:
    """A root-owned 0755 directory (the shim refuses hook directories others can write)."""
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot create: {exc.strerror}") from None
    if not os.path.isdir(path):
        raise ToolkitError(f"{path}: exists and is not a directory")


def is_temp_file(name: str) -> bool:
    return TEMP_FILE.fullmatch(name) is not None


def remove_temp_files(directory: str, name: Optional[str] = None) -> None:
    """Remove the temporary files a killed run left in ``directory`` (only those of ``name`` when given)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        if is_temp_file(entry) and (name is None or entry.rpartition(".")[0].rpartition(".")[0] == f".{name}"):
            try:
                os.unlink(os.path.join(directory, entry))
            except FileNotFoundError:
                pass


def switch_link(link: str, target: str) -> bool:
    """Point ``link`` at ``target`` by renaming a new link over it; False when it already did."""
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    if os.path.lexists(link) and not os.path.islink(link):
        raise ToolkitError(f"{link}: exists and is not a link of this installer; move it away first")
    symlink_atomically(link, target)
    return True


def install_archive(host: HostRoot, toolkit_dir: str, source: str) -> List[str]:
    """Put ``source`` (this .pyz) on the host behind the stable names; what changed, one line each."""
    for directory in ("", "/versions", "/bin"):  # one at a time: each resolved once its parent is there
        make_directory(host.path(toolkit_dir + directory))
        remove_temp_files(host.path(toolkit_dir + directory))
    versions = host.path(f"{toolkit_dir}/versions")
    name = f"container-hooks-toolkit-{__version__}-{file_digest(source)[:12]}.pyz"
    changes = []
    versioned = host.path(f"{toolkit_dir}/versions/{name}")
    if not os.path.isfile(versioned) or file_digest(versioned) != file_digest(source):
        copy_atomically(source, versioned, 0o755)
        changes.append(f"installed {host_view(host, versioned)}")
    if switch_link(host.path(f"{toolkit_dir}/current.pyz", follow_last=False), f"versions/{name}"):
        changes.append(f"switched {toolkit_dir}/current.pyz to versions/{name}")
    for tool in TOOL_NAMES:
        if switch_link(host.path(f"{toolkit_dir}/bin/{tool}", follow_last=False), "../current.pyz"):
            changes.append(f"linked {toolkit_dir}/bin/{tool} -> ../current.pyz")
    changes += prune_versions(host, versions, name)
    return changes


def prune_versions(host: HostRoot, versions: str, current: str) -> List[str]:
    """Keep the current build and the one before it (a runc call may be starting it right now)."""
    builds = [name for name in os.listdir(versions) if name.endswith(".pyz") and not name.startswith(".")]
    older = sorted(
        (name for name in builds if name != current), key=lambda n: os.stat(os.path.join(versions, n)).st_mtime
    )
    removed = []
    for name in older[: max(0, len(older) - (KEPT_VERSIONS - 1))]:
        os.unlink(os.path.join(versions, name))
        removed.append(f"removed old build {host_view(host, os.path.join(versions, name))}")
    return removed


def host_view(host: HostRoot, seen: str) -> str:
    """The host's own path of a path under the host root (for messages a node admin reads)."""
    relative = os.path.relpath(seen, host.root)
    return "/" if relative == "." else "/" + relative


# ----------------------------------------------------------------------------- config sync


class SourceFile(NamedTuple):
    host_path: str  # where it goes on the host
    data: bytes


def read_source_dir(source_dir: str) -> List[SourceFile]:
    """The ConfigMap's files, each validated as the shim will read it; ToolkitError before anything is written.

    Keys: ``config.toml`` (the toolkit config), ``hooks.json`` (hooks for every container) and any other
    ``*.json`` (an oci-hooks(5) file for hooks.d). kubelet's ``..data`` machinery is skipped.
    """
    try:
        names = sorted(name for name in os.listdir(source_dir) if not name.startswith("."))
    except OSError as exc:
        raise ToolkitError(f"{source_dir}: cannot list the hooks ConfigMap: {exc.strerror}") from None
    if len(names) > MAX_KEYS:
        raise ToolkitError(f"{source_dir}: {len(names)} files; at most {MAX_KEYS} are synced")
    files = []
    for name in names:
        path = os.path.join(source_dir, name)
        text = read_text_file(path, MAX_CONFIG_BYTES, "ConfigMap")
        if name == "config.toml":
            check_synced_config(parse_config(text, path), path)
            files.append(SourceFile(DEFAULT_CONFIG_PATH, text.encode()))
        elif name == "hooks.json":
            parse_hooks_json(text, path)
            files.append(SourceFile(HOST_HOOKS, text.encode()))
        elif name.endswith(".json"):
            parse_dropin(text, path)
            files.append(SourceFile(f"{HOST_HOOKS_DIR}/{name}", text.encode()))
        else:
            raise ToolkitError(f"{path}: unknown key: expected config.toml, hooks.json or an oci-hooks(5) *.json file")
    return files


def check_synced_config(config: Config, path: str) -> None:
    """The synced files land in /etc/container-hooks: the config must read them from there."""
    if config["container-hooks"]["path"] != HOST_HOOKS:
        raise ToolkitError(f"{path}: [container-hooks] path must be {HOST_HOOKS} (the node installer syncs it there)")
    if HOST_HOOKS_DIR not in config["container-hooks"]["hooks-dirs"]:
        raise ToolkitError(f"{path}: [container-hooks] hooks-dirs must include {HOST_HOOKS_DIR}")
    if config["container-hooks"]["insecure-allow-non-root-files"]:
        raise ToolkitError(f"{path}: insecure-allow-non-root-files is for test roots, not nodes")


def write_root_file(path: str, data: bytes) -> None:
    """Atomically replace ``path``; root-owned 0644 whatever was there (the shim's trust rules)."""
    write_atomically(path, data, mode=0o644)
    make_root_file(path)


def make_root_file(path: str) -> None:
    """``path`` root-owned (when run as root) and 0644, the mode the shim trusts."""
    try:
        status = os.stat(path)
        if status.st_mode & 0o7777 == 0o644 and ((status.st_uid, status.st_gid) == (0, 0) or os.geteuid() != 0):
            return
        if os.geteuid() == 0:
            os.chown(path, 0, 0)
        os.chmod(path, 0o644)
    except OSError as exc:
        raise ToolkitError(f"{path}: cannot set owner and mode: {exc.strerror}") from None


def sync_config(
    host: HostRoot, state: NodeState, source_dir: str, adjust: Optional[Callable[[SourceFile], SourceFile]] = None
) -> List[str]:
    """Make the host's /etc/container-hooks hold the ConfigMap's files (each as ``adjust`` has it); what changed."""
    wanted = [adjust(item) if adjust else item for item in read_source_dir(source_dir)]
    changes = []
    state.make_hook_directories(host)
    for item in wanted:
        seen = host.path(item.host_path)
        remove_temp_files(os.path.dirname(seen), os.path.basename(seen))
        current = read_bytes(seen)
        if current == item.data:
            state.manage(item.host_path)
            make_root_file(seen)  # a run killed between its write and the chmod
            continue
        if current is not None and item.host_path not in state.managed:
            state.back_up(host, item.host_path, current)
        state.manage(item.host_path)
        state.save()  # first: a crash after the write still knows the file is ours
        write_root_file(seen, item.data)
        changes.append(f"synced {item.host_path}")
    kept = {item.host_path for item in wanted}
    for host_path in sorted(set(state.managed) - kept):
        changes.append(state.give_back(host, host_path))
    state.save()
    return changes


# ----------------------------------------------------------------------------- state and lock


class NodeState:
    """node-state.json: which host files are ours, what was there before, and the engine config last applied."""

    def __init__(self, host: HostRoot, toolkit_dir: str) -> None:
        self.path = host.path(f"{toolkit_dir}/{STATE_NAME}")
        self.backup_dir = host.path(f"{toolkit_dir}/backup")
        data: Dict[str, Any] = {}
        text = read_bytes(self.path)
        if text is not None:
            try:
                data = parse_json_object(text.decode("utf-8", "replace"), self.path)
            except ToolkitError as exc:
                raise ToolkitError(f"{exc}; move it away to start over") from None
        self.managed: List[str] = list(data.get("managed", []))
        self.backups: Dict[str, str] = dict(data.get("backups", {}))
        # host path -> [mode, uid, gid] of the file backed up (a state written before these were kept has none)
        self.owners: Dict[str, List[int]] = dict(data.get("owners", {}))
        self.applied: Optional[str] = data.get("applied")
        # host paths the installer created (conf.d and a backup beside the engine config, /etc/container-hooks)
        self.created: List[str] = list(data.get("created", []))
        # the entries of the directories `runtime configure` writes in, as they were before a configure that
        # has not finished (killed): what is new since then is the installer's (write-ahead)
        self.pending: Optional[Dict[str, List[str]]] = data.get("pending")

    def manage(self, host_path: str) -> None:
        if host_path not in self.managed:
            self.managed.append(host_path)

    def back_up(self, host: HostRoot, host_path: str, data: bytes) -> None:
        copy = os.path.normpath(os.path.join(self.backup_dir, host_path.lstrip("/")))
        if not copy.startswith(os.path.normpath(self.backup_dir) + "/"):
            raise ToolkitError(f"{host_path}: its backup would land outside {self.backup_dir}; not backed up")
        os.makedirs(os.path.dirname(copy), mode=0o700, exist_ok=True)
        write_atomically(copy, data, mode=0o600)
        self.backups[host_path] = copy
        original = os.stat(host.path(host_path))  # sync makes it root's 0644: give_back puts these back
        self.owners[host_path] = [original.st_mode & 0o7777, original.st_uid, original.st_gid]

    def give_back(self, host: HostRoot, host_path: str) -> str:
        """Restore what was at ``host_path`` before the installer, or remove the installer's file."""
        seen = host.path(host_path)
        remove_temp_files(os.path.dirname(seen), os.path.basename(seen))
        copy = self.backups.pop(host_path, None)
        if host_path in self.managed:
            self.managed.remove(host_path)
        owner = self.owners.pop(host_path, None)
        if copy is not None and os.path.isfile(copy):
            with open(copy, "rb") as handle:
                write_atomically(seen, handle.read())
            if owner is not None:
                mode, uid, gid = owner
                if os.geteuid() == 0:
                    os.chown(seen, uid, gid)
                os.chmod(seen, mode)
            os.unlink(copy)
            return f"restored {host_path} as it was before the installer"
        try:
            os.unlink(seen)
        except FileNotFoundError:
            pass
        return f"removed {host_path}"

    def make_hook_directories(self, host: HostRoot) -> None:
        """/etc/container-hooks and its hooks.d, remembered for uninstall when the installer made them."""
        for directory in (HOST_CONFIG_DIR, HOST_HOOKS_DIR):
            seen = host.path(directory)
            if not os.path.isdir(seen):
                # recorded before it is made (a run killed in between leaves no directory unrecorded), by
                # where it is: /etc/container-hooks may be the host's link to another directory
                created = host_view(host, seen)
                if created not in self.created:
                    self.created.append(created)
                    self.save()
                make_directory(seen)

    def remove_created(self, host: HostRoot) -> List[str]:
        """Remove what the installer created (beside the engine config, /etc/container-hooks), a directory only
        when empty; what was removed."""
        removed = []
        for host_path in sorted(self.created, key=len, reverse=True):  # a directory's files first
            seen = host.path(host_path, follow_last=False)
            try:
                if os.path.isdir(seen) and not os.path.islink(seen):
                    os.rmdir(seen)
                elif os.path.lexists(seen):
                    os.unlink(seen)
                else:
                    continue
            except OSError:  # not empty: files put there since (a log the shim wrote ...) are not the installer's
                kept = ", ".join(sorted(os.listdir(seen))[:3]) if os.path.isdir(seen) else "cannot remove"
                removed.append(f"kept {host_path}: not empty ({kept})")
                continue
            removed.append(f"removed {host_path}")
        self.created = []
        return removed

    def save(self) -> None:
        data = {
            "version": __version__,
            "managed": self.managed,
            "backups": self.backups,
            "owners": self.owners,
            "applied": self.applied,
            "created": self.created,
            "pending": self.pending,
        }
        make_directory(os.path.dirname(self.path))
        write_atomically(self.path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)

    def remove(self) -> None:
        for path in (self.path,):
            if os.path.lexists(path):
                os.unlink(path)
        shutil.rmtree(self.backup_dir, ignore_errors=True)


class NodeLock:
    """One installer per node: an flock on a file in the host's /run, seen by every pod on the node."""

    def __init__(self, host: HostRoot) -> None:
        self.path = host.path(LOCK_PATH)
        self.fd = -1

    def __enter__(self) -> NodeLock:
        make_directory(os.path.dirname(self.path))
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(self.fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise ToolkitError(
                        f"{self.path}: another node installer holds it (pid {holder} on the host)"
                    ) from None
                raise ToolkitError(f"{self.path}: cannot lock: {exc.strerror}") from None
            if self.is_the_file():
                break
            os.close(self.fd)  # locked a file an uninstall removed meanwhile: lock the one there now
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def is_the_file(self) -> bool:
        try:
            seen = os.stat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(self.fd)
        return (seen.st_dev, seen.st_ino) == (held.st_dev, held.st_ino)

    def remove(self) -> None:
        """Remove the lock file (uninstall: the host as before), still holding it; the next installer's
        lock then creates a new one (__enter__ retries on a file removed under it)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the flock


def archive_files(host: HostRoot, toolkit_dir: str) -> Iterator[Tuple[str, bool]]:
    """(path, is_dir) of everything install put under ``toolkit_dir``, deepest first, for uninstall."""
    home = host.path(toolkit_dir)
    bin_dir = host.path(f"{toolkit_dir}/bin")
    versions = host.path(f"{toolkit_dir}/versions")
    for tool in TOOL_NAMES:
        yield host.path(f"{toolkit_dir}/bin/{tool}", follow_last=False), False
    yield host.path(f"{toolkit_dir}/current.pyz", follow_last=False), False
    if os.path.isdir(versions):
        for name in sorted(os.listdir(versions)):
            yield os.path.join(versions, name), False
    for directory in (bin_dir, home):  # what a killed run was writing when it died
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                if is_temp_file(name):
                    yield os.path.join(directory, name), False
    for directory in (bin_dir, versions, home):
        yield directory, True
