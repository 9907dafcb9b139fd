"""The shim's marshal cache: used only while every source is unchanged, and only from a private directory."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Tuple

import pytest

from chts.base.signature import signature
from chts.shim import cache

if TYPE_CHECKING:
    from chts.base.signature import Signature


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import posix

    directory = tmp_path / "cache"
    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", str(directory).encode())
    # A file's ctime cannot be set back: the window is closed here and opened where it is tested.
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    return directory


def old_file(path: Path, text: str) -> str:
    """A file with an mtime long ago, as `cp -p` leaves it (its ctime is now)."""
    path.write_text(text)
    past = time.time() - 10
    os.utime(path, (past, past))
    return str(path)


def signed(path: str) -> List[Tuple[str, Signature]]:
    return [(path, signature(path))]


def test_round_trip_and_invalidation(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("hooks:x", signed(source), {"value": [1, 2]})
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    assert cache.read("hooks:x") == {"value": [1, 2]}
    assert cache.read("hooks:y") is None
    old_file(tmp_path / "hooks.json", "{ }")  # same mtime trick, other size
    assert cache.read("hooks:x") is None


def test_chmod_invalidates(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("k:1", signed(source), "v")
    os.chmod(source, 0o666)
    assert cache.read("k:1") is None


def test_missing_source_is_a_signature_too(tmp_path: Path, cache_dir: Path) -> None:
    absent = str(tmp_path / "absent")
    cache.write("k:2", signed(absent), "none")
    assert cache.read("k:2") == "none"
    old_file(tmp_path / "absent", "now here")
    assert cache.read("k:2") is None


def test_recently_changed_sources_are_not_cached(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_SECONDS", 2.0)
    fresh = tmp_path / "fresh.json"
    fresh.write_text("{}")
    cache.write("k:3", signed(str(fresh)), "v")
    assert cache.read("k:3") is None
    # an old mtime does not make a file old: its ctime says when it was changed
    copied = old_file(tmp_path / "copied.json", "{}")
    cache.write("k:3", signed(copied), "v")
    assert cache.read("k:3") is None


def test_a_source_replaced_while_read_is_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    """The signature is the one taken before reading; a file replaced meanwhile (even with the
    same size and an old mtime, as `cp -p` does) must not be cached under either signature."""
    path = old_file(tmp_path / "hooks.json", '{"a": 1}')
    before = signed(path)
    os.unlink(path)
    old_file(tmp_path / "hooks.json", '{"b": 2}')
    cache.write("k:6", before, "content of the first file")
    assert cache.read("k:6") is None
    assert not list(cache_dir.iterdir())


def test_untrusted_directory_or_entry_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("k:4", signed(source), "v")
    assert cache.read("k:4") == "v"
    os.chmod(cache_dir, 0o777)
    assert cache.read("k:4") is None
    os.chmod(cache_dir, 0o700)
    entry = next(cache_dir.iterdir())
    os.chmod(entry, 0o666)
    assert cache.read("k:4") is None


def test_garbage_entry_is_ignored(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("k:5", signed(source), "v")
    entry = next(cache_dir.iterdir())
    entry.write_bytes(b"\x00garbage")
    assert cache.read("k:5") is None


def test_load_config_caches_errors_and_falls_back_to_defaults(tmp_path: Path, cache_dir: Path) -> None:
    path = old_file(tmp_path / "config.toml", "[container-hooks\n")
    config, error = cache.load_config(path)
    assert error is not None and "invalid TOML" in error
    assert config["container-hooks-runtime"]["runtimes"] == ["runc", "docker-runc"]
    assert cache.load_config(path) == (config, error)


# ----------------------------------------------------------------------------- edges mutation testing found


def test_default_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    import posix

    monkeypatch.delitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", raising=False)
    assert cache.cache_dir() == "/run/container-hooks"


def test_keys_of_one_kind_have_entries_of_their_own(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    long_key = "hooks:" + "x" * 300  # the entry's name stays short whatever the key's length
    for key in ("k:a", "k:b", long_key):
        cache.write(key, signed(source), key.upper())
    assert [cache.read(key) for key in ("k:a", "k:b", long_key)] == ["K:A", "K:B", long_key.upper()]
    assert sorted(len(name) for name in os.listdir(cache_dir)) == [len("k-") + 16] * 2 + [len("hooks-") + 16]


def test_a_directory_only_we_can_write_is_trusted(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    assert cache.read("k:1") is None
    assert not cache_dir.exists()  # reading never creates the directory
    cache_dir.mkdir(mode=0o755)
    os.chmod(cache_dir, 0o755)  # /run's usual mode: others may enter and read, not write
    cache.write("k:1", signed(source), "v")
    assert cache.read("k:1") == "v"
    (entry,) = cache_dir.iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600


def test_a_directory_that_is_not_one_is_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    os.chmod(tmp_path / "file", 0o700)
    assert cache._trusted_dir(str(tmp_path / "file"), True) is False
    assert cache._trusted_dir(str(tmp_path / "file" / "sub"), True) is False  # cannot be created
    assert cache._trusted_dir(str(tmp_path / "missing"), False) is False
    assert cache._trusted_dir(str(tmp_path / "missing" / "sub"), True) is False  # mkdir fails: no parent
    assert not (tmp_path / "missing").exists()
    assert cache._trusted_dir(str(tmp_path / "new"), True) is True
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700


def test_a_directory_someone_else_creates_before_our_mkdir_gets_no_entry(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race between looking and creating: a world-writable directory planted there in between is not
    taken for the one we meant to create."""
    import posix

    source = old_file(tmp_path / "hooks.json", "{}")
    real_mkdir = posix.mkdir

    def planted_first(path: str, mode: int = 0o777) -> None:
        real_mkdir(path, 0o777)
        os.chmod(path, 0o777)
        real_mkdir(path, mode)  # ours: FileExistsError

    monkeypatch.setattr(posix, "mkdir", planted_first)
    cache.write("k:1", signed(source), "v")
    assert list(cache_dir.iterdir()) == []


def test_reading_leaves_no_descriptor_open(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("k:fd", signed(source), "v")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert cache.read("k:fd") == "v"
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_source_with_a_future_mtime_is_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    """Clock skew: a file stamped ahead of now may still be rewritten within its timestamp."""
    path = tmp_path / "hooks.json"
    path.write_text("{}")
    future = time.time() + 3600
    os.utime(path, (future, future))
    cache.write("k:future", signed(str(path)), "v")
    assert cache.read("k:future") is None


def test_a_failed_write_leaves_no_temporary(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    cache_dir.mkdir(mode=0o700)
    Path(cache._entry_path("k:dir")).mkdir()  # rename cannot replace a directory
    cache.write("k:dir", signed(source), "v")
    assert [p.name for p in cache_dir.iterdir()] == [Path(cache._entry_path("k:dir")).name]


def test_load_config_is_served_from_the_cache(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chts.config import toolkit as toolkit_config

    path = old_file(tmp_path / "config.toml", '[container-hooks-runtime]\nruntimes = ["crun"]\n')
    config, error = cache.load_config(path)
    assert error is None and config["container-hooks-runtime"]["runtimes"] == ["crun"]

    def unread(path: str) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(toolkit_config, "load_config", unread)
    assert cache.load_config(path) == (config, None)


def test_a_key_naming_a_path_that_is_not_utf8_is_cached(tmp_path: Path, cache_dir: Path) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    key = "hooks:" + os.fsdecode(b"/etc/conf\xff.toml")  # a config path from argv, surrogate-escaped
    cache.write(key, signed(source), "plan")
    assert cache.read(key) == "plan"


def test_only_write_bits_for_group_and_others_make_a_file_not_ours(tmp_path: Path) -> None:
    path = tmp_path / "entry"
    path.write_bytes(b"data")
    for mode, readable in ((0o600, True), (0o711, True), (0o604, True), (0o620, False), (0o602, False)):
        path.chmod(mode)
        found = cache.read_own_file(str(path))
        assert (found is not None and found[0] == b"data") is readable, oct(mode)


def test_a_cache_directory_named_in_bytes_that_are_not_utf8_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posix

    directory = os.fsencode(str(tmp_path)) + b"/cache\xff"
    monkeypatch.setitem(posix.environ, b"CONTAINER_HOOKS_CACHE_DIR", directory)
    monkeypatch.setattr(cache, "RACY_SECONDS", 0.0)
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("hooks:z", signed(source), "plan")
    assert cache.read("hooks:z") == "plan" and os.path.isdir(directory)


def test_replace_file_writes_the_data_private_with_the_mtime_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "record"
    cache.replace_file(str(path), b"one\n", 1_500_000_000_123_456_789)
    assert path.read_bytes() == b"one\n" and path.stat().st_mtime_ns == 1_500_000_000_123_456_789
    assert path.stat().st_mode & 0o777 == 0o600
    cache.replace_file(str(path), b"two\n")
    assert path.read_bytes() == b"two\n" and path.stat().st_mtime_ns != 1_500_000_000_123_456_789


def test_an_entry_an_older_build_wrote_is_not_read(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = old_file(tmp_path / "hooks.json", "{}")
    current = cache.FORMAT
    monkeypatch.setattr(cache, "FORMAT", current - 1)  # the older .pyz
    cache.write("hooks:old", signed(source), "old plan shape")
    assert cache.read("hooks:old") == "old plan shape"
    monkeypatch.setattr(cache, "FORMAT", current)
    assert cache.read("hooks:old") is None


def test_a_bug_in_the_config_reader_is_the_defaults_and_a_message_never_cached(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader's bug must not stop passthrough calls: the defaults, and one line the create reports."""
    from chts.config import toolkit

    path = old_file(tmp_path / "config.toml", '[container-hooks]\npath = "/etc/hooks.json"\n')

    def broken(path: str) -> None:
        raise KeyError("a bug")

    reader = toolkit.load_config
    monkeypatch.setattr(toolkit, "load_config", broken)
    assert cache.load_config(path) == (
        toolkit.default_config(),
        f"{path}: cannot use the toolkit config: KeyError: 'a bug'",
    )
    monkeypatch.setattr(toolkit, "load_config", reader)
    assert cache.load_config(path)[1] is None  # the bug's answer was not kept: the file read as it is


def test_a_cache_entry_is_written_without_an_fsync(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries and records are only computed again when a crash loses them: no create waits for a disk flush."""
    import posix

    synced: List[int] = []
    real = posix.fsync

    def recorded(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(posix, "fsync", recorded)
    source = old_file(tmp_path / "hooks.json", "{}")
    cache.write("hooks:sync", signed(source), "plan")
    cache.replace_file(str(tmp_path / "record"), b"record\n", 1_500_000_000_000_000_000)
    assert cache.read("hooks:sync") == "plan" and (tmp_path / "record").read_bytes() == b"record\n"
    assert synced == []


def test_importing_it_costs_the_create_path_no_typing_module() -> None:
    """Every runc call the shim sees reads the cache: its import stays builtins-cheap (the hot path's tier)."""
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent.parent)
    program = f"import sys; sys.path.insert(0, {root!r}); import chts.shim.cache; print('typing' in sys.modules)"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, "False\n", "")


def test_a_link_planted_at_an_entry_or_record_is_replaced_not_written_through(tmp_path: Path) -> None:
    """The shim writes as root: a symlink where its file goes must not aim that write at another file."""
    victim = tmp_path / "shadow"
    victim.write_bytes(b"root:x:0:0\n")
    link = tmp_path / "record"
    link.symlink_to(victim)
    cache.replace_file(str(link), b"record\n")
    assert victim.read_bytes() == b"root:x:0:0\n"
    assert not link.is_symlink() and link.read_bytes() == b"record\n"
