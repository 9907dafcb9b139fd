"""container-hooks-ctk: the admin CLI, one module per command group."""
