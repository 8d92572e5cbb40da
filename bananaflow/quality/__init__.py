"""The quality gate: every generated image is checked before it is published.

Free pixel checks first (blank, duplicate across products, the output preset's rules), then a
vision judge through the run's provider route, then regeneration with the judge's reasons as
corrections, then a person for what still fails. The verdict types live in
``bananaflow.landing.verdict`` (a manifest row carries them); this package decides them.
"""

__all__ = [
    "build", "feedback", "free_checks", "gemini_judge", "judge_api", "judge_models", "judge_prompt", "openai_judge",
    "reply", "review_apply", "review_board", "review_input", "review_publish", "review_remake", "verdict_schema",
]
