"""Channel adapters: one package per provider, all producing ``InboundContact``."""
