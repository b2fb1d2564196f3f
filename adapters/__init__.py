"""Channel adapters: provider payloads in, normalized contacts out. No Redis access."""
