"""bananaflow: a catalog in, product images from Nano Banana Pro out, landed in S3.

The engine imports no Prefect (``tests/unit/test_architecture.py`` checks it); the Prefect side
(flows, tasks, blocks, deployments) lives in ``bananaflow_prefect``.
"""
