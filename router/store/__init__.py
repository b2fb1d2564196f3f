"""Redis/Valkey storage layer: connection, keys and Lua scripts."""
