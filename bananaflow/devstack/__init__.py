"""The local dev stack: a real S3 server (SeaweedFS) and a local Prefect server, for the demo,
``bananaflow up`` and the tests.
"""
