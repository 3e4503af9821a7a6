"""The built-in backends, each a plugin through the same hooks as any other."""
