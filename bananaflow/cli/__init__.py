"""The ``bananaflow`` command line: the edge where the engine meets Prefect (flows are imported
only by commands that run them).

``main.main`` is the entry point; ``arguments`` (the flags, as ``RunOptions``), ``demo`` (the
deployments' local stack reuses it) and ``malloc_arenas`` are imported from outside too. The
command modules (``commands``, ``ops``, ``doctor``, ``launch``, ``console``) are the CLI's own.
This file imports nothing, so a command loads only what it needs.
"""

__all__ = ["arguments", "demo", "main", "malloc_arenas"]
