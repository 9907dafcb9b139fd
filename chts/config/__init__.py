"""The toolkit's own config file (config.toml): its schema and its edits."""
