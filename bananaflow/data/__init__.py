"""Data files shipped with the package: the model table (``models.toml``, read by
``bananaflow.providers.models``) and the default prompt template (``default_prompt.j2``,
read by ``bananaflow.planning.prompts``). No Python API.
"""

__all__: list[str] = []
