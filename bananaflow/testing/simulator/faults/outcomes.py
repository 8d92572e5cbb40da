"""Which outcome an admitted request gets: scripted first, then chance, then safety.

Kept apart from the routes so the native and the OpenAI-compatible route fail in the
same way for the same knobs.
"""
from __future__ import annotations

import random

from bananaflow.testing.simulator.config import SimulatorConfig
from bananaflow.testing.simulator.faults.script import Script


def _contains_any(prompt: str, words: tuple[str, ...]) -> bool:
    lowered = prompt.lower()
    return any(word.lower() in lowered for word in words)


def choose_outcome(config: SimulatorConfig, script: Script, rng: random.Random, prompt: str) -> str:
    """One of the script outcomes, or "500"/"503" by chance, or "prompt_blocked"/
    "blocked" for a blocked word, or "ok". A scripted outcome is served as written,
    so a scripted "ok" is not subject to chance or word lists."""
    scripted = script.next_outcome(prompt)
    if scripted is not None:
        return scripted
    draw = rng.random()
    if draw < config.rate_500:
        return "500"
    if draw < config.rate_500 + config.rate_503:
        return "503"
    if _contains_any(prompt, config.prompt_blocked_words):
        return "prompt_blocked"
    if _contains_any(prompt, config.blocked_words):
        return "blocked"
    return "ok"
