"""The toolkit's own config file (/etc/container-hooks/config.toml): schema, defaults, loading."""

from __future__ import annotations

from chts.base.file_trust import read_trusted_file
from chts.base.text_files import toml_decode_error, toml_loads
from chts.errors import ToolkitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Tuple

    from typing_extensions import TypedDict

    # The sections as merge_over_defaults returns them, every key present (SCHEMA below is
    # the run-time source of truth; these names only let mypy check each use). Plain dicts at
    # run time: the shim's marshal cache stores them.
    HooksSection = TypedDict(
        "HooksSection",
        {"path": str, "hooks-dirs": List[str], "on-error": str, "insecure-allow-non-root-files": bool},
    )

    class CtkSection(TypedDict):
        path: str

    RuntimeKeys = TypedDict("RuntimeKeys", {"debug": str, "log-level": str, "runtimes": List[str]})

    class RuntimeSection(RuntimeKeys, total=False):
        chains: Dict[str, str]  # only when the file has [container-hooks-runtime.chains]

    Config = TypedDict(
        "Config",
        {"container-hooks": HooksSection, "container-hooks-ctk": CtkSection, "container-hooks-runtime": RuntimeSection},
    )

DEFAULT_CONFIG_PATH = "/etc/container-hooks/config.toml"
CONFIG_PATH_ENV = "CONTAINER_HOOKS_CONFIG"
MAX_CONFIG_BYTES = 1 << 20
LOG_LEVELS = ("debug", "info", "warning", "error")
FAILURE_POLICIES = ("fail", "skip")
# [container-hooks-runtime.chains] TAG = "/abs/low-level-runtime": the binary the shim execs when it runs
# as container-hooks-runtime.TAG (`runtime configure` writes these, see docs/shim.md "One host, several
# engines"). Not in SCHEMA: its keys are the tags, not fixed names.
RUNTIME_SECTION = "container-hooks-runtime"
CHAINS_KEY = "chains"
TAG_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")

# section -> key -> (type, default, comment). Types: "path" (absolute path string),
# "path-or-empty", "string-list", "log-level", "path-list" (absolute paths, may be empty),
# "on-error" (one of FAILURE_POLICIES), "bool". This table is the single source for
# defaults, validation, `ctk config --set` and the commented default file.
SCHEMA: Dict[str, Dict[str, Tuple[str, Any, str]]] = {
    "container-hooks": {
        "path": ("path", "/etc/container-hooks/hooks.json", "hooks file injected into every container"),
        "hooks-dirs": (
            "path-list",
            ["/etc/container-hooks/hooks.d"],
            "drop-in directories of oci-hooks(5) *.json files (conditional hooks); "
            "a later directory masks a file of the same name in an earlier one",
        ),
        "on-error": (
            "on-error",
            "fail",
            'when a hook source is unusable: "fail" the create (default) or "skip" that source with a warning',
        ),
        "insecure-allow-non-root-files": (
            "bool",
            False,
            "accept hook files and directories owned by any user (test roots only; the shim logs a warning)",
        ),
    },
    "container-hooks-ctk": {
        "path": ("path", "/usr/bin/container-hooks-ctk", "where the admin CLI is installed"),
    },
    "container-hooks-runtime": {
        "debug": (
            "path-or-empty",
            "/etc/container-hooks/container-hooks-runtime.log",
            'log file of the shim ("" turns it off)',
        ),
        "log-level": ("log-level", "info", "one of: " + ", ".join(LOG_LEVELS)),
        "runtimes": ("string-list", ["runc", "docker-runc"], "low-level runtimes, first found wins"),
    },
}


def config_path() -> str:
    """The config file this process uses: $CONTAINER_HOOKS_CONFIG, else the default."""
    import os  # not at the top: the shim finds the file without it (chts.shim.main.config_path)

    return os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH


def default_config() -> Config:
    # Defaults are strings, booleans and lists of strings: copying the lists is a deep copy.
    config: Any = {
        section: {key: list(spec[1]) if isinstance(spec[1], list) else spec[1] for key, spec in keys.items()}
        for section, keys in SCHEMA.items()
    }
    typed: Config = config  # SCHEMA has exactly Config's sections and keys
    return typed


def check_tag(tag: str) -> str:
    """``tag`` if it can follow `container-hooks-runtime.` in a file name; raise ValueError saying why not."""
    if not tag or not set(tag) <= TAG_CHARACTERS:
        raise ValueError(f"tag {tag!r} must be letters, digits, '-' or '_'")
    return tag


def check_chains(value: Any) -> Dict[str, str]:
    """``value`` if it is a table of tag -> absolute path of a low-level runtime; raise ValueError saying why not."""
    if not isinstance(value, dict):
        raise ValueError('must be a table of tag = "/absolute/path"')
    for tag, binary in value.items():
        check_tag(tag)
        if not isinstance(binary, str) or not binary.startswith("/") or "\0" in binary or "\n" in binary:
            raise ValueError(f"{tag} must be an absolute path on one line, not {binary!r}")
    return dict(value)


def check_value(section: str, key: str, value: Any) -> Any:
    """Return ``value`` if it fits the schema of ``section.key``; raise ValueError saying why not."""
    kind = SCHEMA[section][key][0]
    if kind in ("path", "path-or-empty"):
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if kind == "path-or-empty" and value == "":
            return value
        if not value.startswith("/"):
            raise ValueError(f"must be an absolute path, not {value!r}")
        if "\0" in value:
            raise ValueError("must not contain a NUL character")
        return value
    if kind == "log-level":
        if value not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return value
    if kind == "string-list":
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list of strings")
        for item in value:
            if not isinstance(item, str) or not item or "\0" in item:
                raise ValueError(f"must be a non-empty list of non-empty strings, has {item!r}")
        return list(value)
    if kind == "path-list":
        if not isinstance(value, list):
            raise ValueError("must be a list of absolute paths")
        for item in value:
            if not isinstance(item, str) or not item.startswith("/") or "\0" in item:
                raise ValueError(f"must be a list of absolute paths, has {item!r}")
        return list(value)
    if kind == "on-error":
        if value not in FAILURE_POLICIES:
            raise ValueError(f"must be one of {', '.join(FAILURE_POLICIES)}, not {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value
    raise AssertionError(f"unknown schema type {kind}")


def merge_over_defaults(data: Dict[str, Any], path: str) -> Config:
    """Validate a parsed config document and lay it over the defaults."""
    config = default_config()
    sections: Dict[str, Dict[str, Any]] = config  # type: ignore[assignment]  # indexed by SCHEMA's names
    for section, values in data.items():
        if section not in SCHEMA:
            known = ", ".join(f"[{name}]" for name in SCHEMA)
            raise ToolkitError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(values, dict):
            raise ToolkitError(f"{path}: {section} must be a table [{section}]")
        for key, value in values.items():
            if section == RUNTIME_SECTION and key == CHAINS_KEY:
                try:
                    sections[section][key] = check_chains(value)
                except ValueError as exc:
                    raise ToolkitError(f"{path}: [{section}.{key}] {exc}") from None
                continue
            if key not in SCHEMA[section]:
                known = ", ".join(SCHEMA[section])
                raise ToolkitError(f"{path}: unknown key {key!r} in [{section}] (known: {known})")
            try:
                sections[section][key] = check_value(section, key, value)
            except ValueError as exc:
                raise ToolkitError(f"{path}: [{section}] {key} {exc}") from None
    return config


def parse_config(text: str, path: str) -> Config:
    try:
        data = toml_loads(text)
    except toml_decode_error() as exc:
        raise ToolkitError(f"{path}: invalid TOML: {exc}") from None
    return merge_over_defaults(data, path)


def load_config(path: str) -> Config:
    """The effective config: defaults, overlaid by ``path`` when it exists.

    It names the hooks that run as root and the runtime the shim execs, so a file
    another user could have written is refused (chts.base.file_trust).
    """
    text = read_trusted_file(path, MAX_CONFIG_BYTES, "toolkit config")
    if text is None:
        return default_config()
    return parse_config(text, path)


def chains_of(config: Config) -> Dict[str, str]:
    return config["container-hooks-runtime"].get("chains", {})


def runtimes_of(config: Config) -> List[str]:
    runtimes: List[str] = config["container-hooks-runtime"]["runtimes"]
    return runtimes
