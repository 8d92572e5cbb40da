"""The engine on real parts, without Prefect: ``ItemProcessor`` + the simulator over HTTP +
weed mini, for tests that need many runs or exact control (faults, racing runs)."""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from bananaflow.generation.pipeline import ItemProcessor
from bananaflow.generation.retry import RetryPolicy
from bananaflow.landing.claims import KeyClaims
from bananaflow.landing.keys import key_stem, params_hash
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.spool import Spool
from bananaflow.landing.storage import ImageStore, make_s3_client
from bananaflow.limits.controller import RateController
from bananaflow.planning.work import WorkItem
from bananaflow.providers import make_provider
from bananaflow.providers.settings import ProviderSettings
from bananaflow.secrets import Secret

MODEL = "gemini-3-pro-image"
API_KEY = "FAKE-ENGINE-harness-key-0123456789abcdef"


def items(skus: list[str], prefix: str = "shop") -> list[WorkItem]:
    """One 1K square image per SKU; the prompt names the SKU so a script can target it."""
    out = []
    for row, sku in enumerate(skus, start=2):
        prompt = f"Studio product photo of item <{sku}> on white"
        digest = params_hash(prompt, MODEL, {"aspect_ratio": "1:1", "image_size": "1K"})
        out.append(
            WorkItem(
                row_number=row,
                sku=sku,
                variant="main",
                prompt=prompt,
                model=MODEL,
                aspect_ratio="1:1",
                image_size="1K",
                key_stem=key_stem(prefix, sku, "main", digest),
                prompt_sha256=hashlib.sha256(prompt.encode()).hexdigest(),
            )
        )
    return out


def store_for(s3_server, bucket: str) -> ImageStore:  # noqa: ANN001
    client = make_s3_client(endpoint_url=s3_server.endpoint_url, region="us-east-1", max_attempts=1,
                            connect_timeout=2, read_timeout=10)
    store = ImageStore(bucket, client=client)
    store.ensure_bucket()
    return store


@dataclass
class Engine:
    """Builds one run's processor; ``run`` processes items and returns their rows."""

    base_url: str
    store: ImageStore
    spool_dir: Path
    policy: RetryPolicy = RetryPolicy(max_attempts=4, initial_wait=0.05, max_wait=0.2, deadline_s=20)
    timeout_s: float = 5.0
    concurrency: int = 4
    api_key: str = API_KEY
    claims: bool = True
    claim_lease_s: float | None = None

    def run(self, work: list[WorkItem], run_id: str = "run-1", *, controller: RateController | None = None
            ) -> list[ManifestRow]:
        return asyncio.run(self.arun(work, run_id, controller=controller))

    async def arun(self, work: list[WorkItem], run_id: str = "run-1", *, controller: RateController | None = None,
                   claim_poll_s: float = 0.1) -> list[ManifestRow]:
        settings = ProviderSettings("gemini", self.base_url, Secret(self.api_key), "header", MODEL,
                                    timeout_s=self.timeout_s)
        provider = make_provider(settings)
        try:
            processor = ItemProcessor(
                provider, self.store, controller or RateController(self.concurrency), self.policy,
                run_id=run_id, spool=Spool(self.spool_dir),
                claims=KeyClaims(self.store, run_id, lease_s=self.claim_lease_s or self.policy.deadline_s + 10,
                                 poll_s=claim_poll_s)
                if self.claims else None,
            )
            return await processor.process_all(work)
        finally:
            await provider.aclose()
