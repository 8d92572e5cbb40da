"""Test doubles a user can run too: the Nano Banana simulator (a real HTTP server) and an
in-memory image store for benchmarks.

The public API is its modules, imported by name (``simulator.SimulatorServer``,
``memory_store.MemoryStore``); this file imports nothing, so the store loads no web server.
"""

__all__ = ["memory_store", "simulator"]
