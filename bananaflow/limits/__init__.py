"""Staying inside the provider's limits: meters, the rate controller, where counts live
(process or Redis), adaptive limits, circuit breakers, the budget, and one run's admission.
"""
