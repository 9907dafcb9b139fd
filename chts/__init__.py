"""container-hooks-toolkit: OCI hooks in every container, through a runc shim."""

__version__ = "0.1.0"

# The tools' names: the one file is installed under these, and engines know the shim by the first.
SHIM = "container-hooks-runtime"
CTK = "container-hooks-ctk"
MARKER = "container-hooks"
TOOL_NAMES = (SHIM, CTK, MARKER)  # the three names the archive is installed under
# Where the shim keeps its caches on a host ($CONTAINER_HOOKS_CACHE_DIR moves them).
DEFAULT_CACHE_DIR = "/run/container-hooks"
# The socket a CRI runtime serves NRI plugins on by default (containerd/nri pkg/api DefaultSocketPath, CRI-O).
DEFAULT_NRI_SOCKET = "/var/run/nri/nri.sock"
