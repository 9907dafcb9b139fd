"""container-hooks-runtime: runc's argv, the create path, precreate, its log and caches."""
