"""Process supervision for the embedded Valkey server (dev runs and tests)."""

from router.server.embedded import EmbeddedValkey, find_server_binary

__all__ = ["EmbeddedValkey", "find_server_binary"]
