"""bananaflow on Prefect: the thin layer over the engine, installed under one import name.

The project keeps Prefect's usual top-level folders (``flows/``, ``tasks/``, ``blocks/``,
``deployments/``); ``pyproject.toml`` installs them as ``bananaflow_prefect.flows`` and so on,
so nothing generic lands at the top of site-packages.
"""
