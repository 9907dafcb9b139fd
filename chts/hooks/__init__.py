"""The hook model: stages, hooks.json, oci-hooks(5) drop-ins, conditions, merging, sources, problems."""
