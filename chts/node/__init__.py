"""The Kubernetes node installer: the host root, its files, the engine, the CRI and API clients."""
