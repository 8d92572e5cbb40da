"""Staying inside the provider's limits: meters, the rate controller, where counts live
(process or Redis), adaptive limits, circuit breakers, the budget, and one run's admission.

The public API is its modules, imported by name (``admission.Admission`` is what a run holds,
``settings.LimitSettings`` what a user sets); this file imports nothing, so importing one
loads only what it needs.
"""

__all__ = ["accounts", "adaptive", "admission", "backends", "breaker", "budget", "controller", "job_budget", "meters", "settings"]
