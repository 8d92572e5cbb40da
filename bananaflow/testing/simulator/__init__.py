"""A local stand-in for Google's Gemini image API (and OpenAI-style relays).

The live API cannot be reached from build machines, so the simulator speaks the real
wire protocol over real HTTP, with knobs for latency, quotas and scripted faults.

    from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer
    with SimulatorServer(SimulatorConfig(requests_per_minute=20)) as sim:
        ...  # point a client at sim.base_url
"""
from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.server import SimulatorServer

__all__ = ["SimulatorConfig", "SimulatorServer", "cli"]  # cli: ``bananaflow simulator`` runs it
