"""Utilities every layer uses: atomic writes, trust checks, JSON and TOML reading and editing."""
