"""The ways the simulator refuses or spoils a request: quotas, the script, chance."""

__all__ = ["outcomes", "quota", "script"]  # imported by name by the simulator's routes and engine
