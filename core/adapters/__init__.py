"""Adapters of the ports in core.deps to real clients (built only by core.wiring)."""
