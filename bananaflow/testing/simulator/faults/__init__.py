"""The ways the simulator refuses or spoils a request: quotas, the script, chance."""
