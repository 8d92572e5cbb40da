"""Where tests find the repository and their fixtures, wherever the test file sits."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLES = ROOT / "examples"
CATALOG_FIXTURES = FIXTURES / "catalogs"
