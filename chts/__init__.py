"""container-hooks-toolkit: OCI hooks in every container, through a runc shim."""

__version__ = "0.1.0"
