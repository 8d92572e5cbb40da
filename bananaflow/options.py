"""What a run can be told, defined once.

The CLI builds these models, deployments and ``run_deployment`` pass them as the catalog
flow's parameters (Prefect shows each group as a form and checks its constraints before a
run is created), and the retry and scale-out flows forward them whole.

**One merge rule, for every field a block can also give**: a value set in the run's options
wins; an option left empty (``None``) takes the named block's value; what neither gives comes
from the environment, then the built-in default. Prefect merges a run's parameters over a
deployment's one group at a time, so a run that passes ``limits`` replaces the deployment's
whole ``limits`` group (``catalog`` stays top-level: the ``catalog.updated`` trigger fills it).

The command line's flags are made from these fields (``cli.arguments``): a new field is a new
flag, ``--field-name`` with the field's description as its help, unless a ``Flag`` spells it
otherwise or a ``NoFlag`` says why the command line leaves it out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bananaflow.errors import ConfigurationError
from bananaflow.limits.settings import LimitSettings


@dataclass(frozen=True)
class Flag:
    """How the command line spells a field that is not ``--field-name``: its older name, the
    placeholder in ``--help``, for a switch the value it sets, and for a list whether one flag
    takes several values (``--approve A B``) (``cli.arguments`` makes every flag from the
    fields: name, help from the description, type, choices, bounds)."""

    name: str | None = None
    metavar: str | None = None
    sets: bool = True
    many: bool = False


@dataclass(frozen=True)
class NoFlag:
    """A field (or a whole group) the command line does not offer, and why."""

    reason: str


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The model whose defaults an empty field ends up with, when not the field's own (shown in ``--help``).
    empty_takes: ClassVar[type[BaseModel] | None] = None

    def given(self) -> dict[str, Any]:
        """The fields this group sets (not ``None``): what wins over a block."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ImageOptions(_Group):
    """What to make for every product: a job spec, or one template's single image."""

    job: str | dict[str, Any] | None = Field(
        None, description="Job spec (a YAML/TOML file, or the spec itself): variants, templates, presets; "
        "it replaces the single-template options."
    )
    template: str | None = Field(
        None, description="Jinja2 prompt template file (without a job spec); empty: the built-in product-shot prompt."
    )
    model: str | None = Field(None, description="Model id; empty: the provider block's, BANANAFLOW_MODEL, gemini-3-pro-image.")
    image_size: Annotated[str, Flag("--size")] = Field("1K", description="Image size: 512 (3.1 Flash), 1K, 2K or 4K.")
    aspect_ratio: Annotated[str, Flag("--aspect")] = Field("1:1", description="Aspect ratio, e.g. 1:1, 4:5, 16:9.")
    variant: str = Field("main", min_length=1, description="Variant name used in object keys (without a job spec).")
    output_preset: str | None = Field(None, description="Marketplace preset for the single-template variant, e.g. amazon-main.")


class CatalogOptions(_Group):
    """How to read the catalog: the same options for every command that reads one."""

    encoding: str | None = Field(
        None, description="Catalog text encoding, e.g. cp1252, gb18030; empty: UTF-8 or UTF-16 with a BOM, otherwise "
        "detected, and refused when it cannot be told for sure."
    )
    catalog_preset: str | None = Field(
        None, description="Export format: shopify, merchant, woocommerce or none; empty: recognised from the columns."
    )
    column_map: Annotated[dict[str, str] | None, Flag("--map", metavar='FIELD="Column"')] = Field(
        None, description='Columns of the file read as our fields, e.g. the column "Variant SKU" as our sku.'
    )
    previous_manifest: str | None = Field(
        None, description="Manifest of an earlier run (path, s3:// URI, or 'latest' under the prefix): only new or "
        "changed products are made."
    )
    include_unpublished: bool | None = Field(
        None, description="Also make images for drafts, archived/unpublished products, gift cards and app "
        "pseudo-products such as shipping protection (otherwise skipped and counted)."
    )
    sku_from: Annotated[str | None, Flag(metavar="COLUMN")] = Field(
        None, description="Column whose value becomes the SKU of a list without one (e.g. title or link)."
    )


class DeliveryOptions(_Group):
    """Where images, manifests and write-back files land."""

    bucket: str | None = Field(
        None, description="Bucket for images and manifests: an S3 bucket (name or s3://bucket[/prefix]) or Cloud "
        "Storage (gs://bucket[/prefix]); empty: the store block's. Credentials come from AWS_* variables, Google's "
        "ADC, or the blocks."
    )
    prefix: str | None = Field(None, description="Key prefix; empty: the store block's, else 'bananaflow'.")
    writeback: Literal["shopify", "merchant"] | None = Field(
        None, description="Write the new image URLs back as this feed, next to the manifest."
    )
    public_base_url: str | None = Field(None, description="Public URL the bucket is served under; empty: presigned URLs.")


def _limit(name: str) -> str | None:
    """``LimitSettings``' description of a limit: one text for the block, the flow and the CLI."""
    return LimitSettings.model_fields[name].description


class LimitOptions(_Group):
    """The project's limits for this run, per project and model (BANANAFLOW_REDIS_URL shares them between
    workers); empty fields take the limits block's values."""

    # LimitSettings' fields, each optional, with its constraints and descriptions (a test keeps them alike)
    empty_takes = LimitSettings

    max_in_flight: Annotated[int | None, Flag("--concurrency")] = Field(None, ge=1, description=_limit("max_in_flight"))
    requests_per_minute: Annotated[float | None, Flag("--rpm")] = Field(
        None, gt=0, description=_limit("requests_per_minute")
    )
    images_per_minute: Annotated[float | None, Flag("--ipm")] = Field(None, gt=0, description=_limit("images_per_minute"))
    requests_per_day: Annotated[int | None, Flag("--rpd")] = Field(None, ge=1, description=_limit("requests_per_day"))
    spend_per_10min_usd: Annotated[float | None, Flag("--spend-cap", metavar="USD")] = Field(
        None, gt=0, description=_limit("spend_per_10min_usd")
    )
    adaptive: bool | None = Field(None, description=_limit("adaptive"))
    adaptive_start_rpm: Annotated[float | None, NoFlag("tuning of --adaptive, set on the limits block")] = Field(
        None, gt=0, description=_limit("adaptive_start_rpm")
    )
    max_attempts: Annotated[int | None, NoFlag("retry tuning, set on the limits block")] = Field(
        None, ge=1, description=_limit("max_attempts")
    )
    deadline_s: Annotated[float | None, NoFlag("retry tuning, set on the limits block")] = Field(
        None, gt=0, description=_limit("deadline_s")
    )
    worker_slots: Annotated[
        int | None, NoFlag("a Prefect global concurrency limit named after the limits block, which a CLI run has none of")
    ] = Field(None, ge=1, description=_limit("worker_slots"))


class SpendOptions(_Group):
    """What a run may spend, and which other models may make its images."""

    max_cost_usd: Annotated[float | None, Flag("--max-cost", metavar="USD")] = Field(
        None, gt=0, description="Stop sending at this spend (worst case reserved per call); the rest is deferred."
    )
    fallback_models: Annotated[list[str] | None, Flag("--fallback-model", metavar="MODEL")] = Field(
        None, description="Models to use, in order, when the main one is overloaded, failing or out of quota."
    )
    allow_fallback: Annotated[bool | None, Flag("--no-fallback", sets=False)] = Field(
        None, description="Let fallback models make the variant's images; false: the main model makes them all."
    )
    retry_blocked: bool = Field(
        False, description="Send again items an earlier run saw blocked by the safety filter (same prompt)."
    )
    daily_budget_usd: Annotated[float | None, Flag("--daily-budget", metavar="USD")] = Field(
        None, gt=0, description="What this job may spend per UTC day across all its runs (scheduled, triggered, retries, "
        "shards); empty: no daily cap."
    )


class QualityOptions(_Group):
    """The quality gate: every image checked before it is published, failures made again with the reasons,
    what still fails left for a person."""

    qa: Literal["on", "off"] | None = Field(
        None, description="Check every image (free pixel checks, then a vision judge) before publishing; empty: the job "
        "spec's, else on. off: publish what the model returns."
    )
    qa_model: str | None = Field(
        None, description="The vision judge's model; empty: the job spec's, else the default judge model in models.toml."
    )
    qa_max_attempts: int | None = Field(
        None, ge=0, le=5, description="Regenerations of an image that failed its checks, each with the reasons as "
        "corrections; empty: the job spec's, else 2."
    )
    review: Literal["off", "flagged", "all"] | None = Field(
        None, description="Wait for a person in the Prefect UI once generation ends: flagged images, or all; off: never "
        "wait (scheduled runs)."
    )
    review_timeout_hours: Annotated[float | None, Flag("--review-timeout", metavar="HOURS")] = Field(
        None, gt=0, le=24 * 14, description="How long a review waits; then what passed is published and the rest stays "
        "needs_review; empty: 24."
    )
    retry_rejected: bool = Field(
        False, description="Make again unchanged products whose image was rejected or left for review by an earlier run."
    )


_SHARD = NoFlag("scale-out: the sharded flow sets it for the shard runs it starts on a deployment")


class ExecutionOptions(_Group):
    """How the run executes: realtime or Gemini Batch mode, and which shard of the catalog."""

    mode: Literal["realtime", "batch", "auto"] | None = Field(
        None, description="realtime calls, Gemini Batch mode (half price, results within 24 h), or auto: batch for "
        "large jobs whose deadline allows; empty: the job spec's run.mode, else realtime."
    )
    deadline_hours: float | None = Field(
        None, gt=0, description="The job must finish within this many hours (auto picks realtime under 24)."
    )
    batch_max_items: int = Field(500, ge=1, description="Images per batch at most.")
    batch_poll_max_s: Annotated[float, Flag("--batch-poll-max", metavar="SECONDS")] = Field(
        300.0, gt=0, description="Longest wait between two polls of a batch, in seconds."
    )
    shard_index: Annotated[int, _SHARD] = Field(0, ge=0, description="This run's shard (0-based).")
    shard_count: Annotated[int, _SHARD] = Field(1, ge=1, description="Shards the catalog is split into.")
    shard_deployment: Annotated[str, _SHARD] = Field(
        "catalog-to-images/catalog-shard", description="Scale-out: the deployment each shard runs as."
    )
    shard_wait_s: Annotated[float, _SHARD] = Field(
        6 * 3600.0, gt=0, description="Scale-out: how long to wait for the shard runs."
    )

    @model_validator(mode="after")
    def _shard_in_range(self) -> ExecutionOptions:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} is not below shard_count {self.shard_count}")
        return self


class BlockNames(_Group):
    """Prefect blocks to take configuration from (see the merge rule above)."""

    provider: str | None = Field(None, description="ImageProviderBlock: endpoint, key, model, fallback models.")
    store: str | None = Field(None, description="ImageStoreBlock: bucket, prefix, endpoint, credentials.")
    limits: str | None = Field(None, description="GenerationLimits: the project's limits.")
    s3_bucket: str | None = Field(None, description="prefect-aws S3Bucket: bucket, folder and credentials of the store.")
    aws_credentials: str | None = Field(
        None, description="prefect-aws AwsCredentials: the store's credentials (with delivery.bucket, or for s3_bucket)."
    )
    gcp_credentials: str | None = Field(
        None, description="prefect-gcp GcpCredentials: the service account (and project) of the Vertex AI route, "
        "and of a gs:// bucket's store."
    )
    gcs_bucket: str | None = Field(
        None, description="prefect-gcp GcsBucket: bucket, folder and credentials of a Cloud Storage store."
    )


class RunOptions(BaseModel):
    """Everything a catalog run can be told, apart from the catalog itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: ImageOptions = ImageOptions()
    reading: CatalogOptions = CatalogOptions()
    delivery: DeliveryOptions = DeliveryOptions()
    limits: LimitOptions = LimitOptions()
    spend: SpendOptions = SpendOptions()
    quality: QualityOptions = QualityOptions()
    execution: ExecutionOptions = ExecutionOptions()
    blocks: Annotated[BlockNames, NoFlag("blocks configure deployment runs; a CLI run reads flags and the environment")] = (
        BlockNames()
    )

    def as_parameters(self) -> dict[str, Any]:
        """The catalog flow's parameters (without ``catalog``), JSON-ready, only what is set."""
        dumped = {name: group.model_dump(exclude_unset=True, mode="json") for name, group in self}
        return {name: values for name, values in dumped.items() if values}

    def with_changes(self, **groups: dict[str, Any]) -> RunOptions:
        """A copy with some fields of some groups replaced, e.g. ``execution={"shard_index": 2}``."""
        update = {name: getattr(self, name).model_copy(update=values) for name, values in groups.items()}
        return self.model_copy(update=update)


def resolve_limits(options: LimitOptions, block: LimitSettings | None) -> LimitSettings:
    """The run's limits by the merge rule: the run's fields, else the block's, else defaults."""
    base = block.model_dump(include=set(LimitSettings.model_fields)) if block is not None else {}
    try:
        return LimitSettings.model_validate({**base, **options.given()})
    except ValueError as exc:  # pydantic's message names the field and the constraint
        raise ConfigurationError(f"limits: {exc}") from None
