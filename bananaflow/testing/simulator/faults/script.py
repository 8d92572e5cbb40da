"""Deterministic fault injection: outcomes served in order to prompts that match.

End-to-end tests need "the 2nd call for SKU-7 gets a 429, the 3rd succeeds" without
relying on chance or timing, so a script maps a prompt substring to a list of outcomes
consumed one per matching call; once a list is used up, that prompt is served normally.
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence


class Script:
    """Cursor over a ``{prompt substring: [outcome, ...]}`` script."""

    def __init__(self, script: Mapping[str, Sequence[str]]) -> None:
        self.source = script
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next_outcome(self, prompt: str) -> str | None:
        """The next scripted outcome for ``prompt``, or None to serve it normally.
        The first key (in script order) that matches and has outcomes left wins."""
        with self._lock:
            for key, outcomes in self.source.items():
                if key in prompt and self._served[key] < len(outcomes):
                    self._served[key] += 1
                    return outcomes[self._served[key] - 1]
        return None
