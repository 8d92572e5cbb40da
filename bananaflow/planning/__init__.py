"""Planning a run: job specs, prompts, work items and their keys, delta runs, shards, and the
price/time estimate; everything decided before any call is made.

The public API is its modules, imported by name (``plan.plan_catalog``, ``work.WorkItem``,
``jobspec.load_job`` ...); this file imports nothing, so importing one loads only what it needs.
"""

__all__ = [
    "batch_sizing", "delta", "estimate", "jobspec", "mode", "plan", "preflight", "preview",
    "prompts", "quality", "sharding", "work", "work_store",
]
