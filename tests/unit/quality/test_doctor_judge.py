"""`bananaflow doctor` checks the judge: one tiny call through the run's route, or the fix."""
from __future__ import annotations

import pytest

from bananaflow.cli.main import main
from bananaflow.testing.simulator import SimulatorConfig, SimulatorServer

KEY = "FAKE-TEST-doctor-judge-0123456789abcdef"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "BANANAFLOW_PROVIDER", "BANANAFLOW_MODEL",
                 "GOOGLE_GENAI_USE_VERTEXAI", "PREFECT_API_URL", "BANANAFLOW_REDIS_URL", "GOOGLE_GEMINI_BASE_URL",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _judge_line(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    main(["doctor", *args])
    out = capsys.readouterr().out
    assert KEY not in out
    return [line for line in out.splitlines() if line[5:].startswith("judge") or "fix: pick a judge" in line]


def test_the_judge_answers_through_ai_studio(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatorServer(SimulatorConfig(api_key=KEY)) as sim:
        env.setenv("GEMINI_API_KEY", KEY)
        env.setenv("GOOGLE_GEMINI_BASE_URL", sim.base_url)
        lines = _judge_line(capsys)
        assert len(lines) == 1 and lines[0].startswith("ok   judge") and "gemini-3.8-flash answered a verdict" in lines[0]
        assert sim.judge_stats()["requests_total"] == 1 and sim.request_log() == []  # one judge call, no image
        assert _judge_line(capsys, "--qa", "off") == [] and sim.judge_stats()["requests_total"] == 1


def test_a_relay_that_cannot_judge_gets_the_fix(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatorServer(SimulatorConfig(api_key=KEY, openai_json_schema=False)) as sim:
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("OPENAI_BASE_URL", sim.base_url + "/v1")
        lines = _judge_line(capsys)
        assert lines[0].startswith("FAIL judge") and "json_schema" in lines[0] and "--qa off" in lines[0]
        assert "fix: pick a judge model" in lines[1]
        unknown = _judge_line(capsys, "--qa-model", "nope-flash")
        assert unknown[0].startswith("FAIL judge") and "unknown judge model 'nope-flash'" in unknown[0]
