"""The local dev stack: a real S3 server (SeaweedFS), a Cloud Storage emulator and a local Prefect server, for the demo,
``bananaflow up`` and the tests.

The public API is its modules, imported by name; this file imports nothing.
"""

__all__ = ["gcs_emulator", "local_gcs", "local_prefect", "local_s3", "processes"]
