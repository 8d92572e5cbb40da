"""What a run can be told, defined once.

The CLI builds these models, deployments and ``run_deployment`` pass them as the catalog
flow's parameters (Prefect shows each group as a form and checks its constraints before a
run is created), and the retry and scale-out flows forward them whole.

**One merge rule, for every field a block can also give**: a value set in the run's options
wins; an option left empty (``None``) takes the named block's value; what neither gives comes
from the environment, then the built-in default. Prefect merges a run's parameters over a
deployment's one group at a time, so a run that passes ``limits`` replaces the deployment's
whole ``limits`` group (``catalog`` stays top-level: the ``catalog.updated`` trigger fills it).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from bananaflow.errors import ConfigurationError
from bananaflow.limits.settings import LimitSettings


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def given(self) -> dict[str, Any]:
        """The fields this group sets (not ``None``): what wins over a block."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ImageOptions(_Group):
    """What to make for every product: a job spec, or one template's single image."""

    job: str | dict[str, Any] | None = Field(
        None, description="Job spec (YAML/TOML path, or the spec itself): variants, templates, presets."
    )
    template: str | None = Field(None, description="Jinja2 prompt template file (without a job spec).")
    model: str | None = Field(None, description="Model id; empty: the provider block's, BANANAFLOW_MODEL, gemini-3-pro-image.")
    image_size: str = Field("1K", description="512 (3.1 Flash), 1K, 2K or 4K.")
    aspect_ratio: str = Field("1:1", description="e.g. 1:1, 4:5, 16:9.")
    variant: str = Field("main", min_length=1, description="Variant name used in object keys (without a job spec).")
    output_preset: str | None = Field(None, description="Marketplace preset for the single-template variant, e.g. amazon-main.")


class CatalogOptions(_Group):
    """How to read the catalog: the same options for every command that reads one."""

    encoding: str | None = Field(None, description="Text encoding, e.g. cp1252, gb18030; empty: detected.")
    catalog_preset: str | None = Field(
        None, description="Export format (shopify, merchant, none); empty: recognised from the columns."
    )
    column_map: dict[str, str] | None = Field(
        None, description='Columns of the file used as our fields: {"Variant SKU": "sku"}.'
    )
    previous_manifest: str | None = Field(
        None, description="Manifest of an earlier run (path, s3:// URI or 'latest'): only new or changed products."
    )
    include_unpublished: bool | None = Field(
        None, description="Also make images for drafts, archived/unpublished products and app pseudo-products."
    )
    sku_from: str | None = Field(
        None, description="Column whose value becomes the SKU of a list without one (e.g. 'title' or 'link')."
    )


class DeliveryOptions(_Group):
    """Where images, manifests and write-back files land."""

    bucket: str | None = Field(None, description="S3 bucket; empty: the store block's.")
    prefix: str | None = Field(None, description="Key prefix; empty: the store block's, else 'bananaflow'.")
    writeback: Literal["shopify", "merchant"] | None = Field(None, description="Write the image URLs back as this feed.")
    public_base_url: str | None = Field(None, description="Public URL the bucket is served under; empty: presigned URLs.")


def _optional_fields(model: type[BaseModel], name: str, doc: str) -> type[_Group]:
    """``model``'s fields, each optional with no default: a run's overrides of a block."""
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        copy = info._copy()  # keeps description and constraints (ge, gt ...)
        copy.default = None
        copy.annotation = info.annotation | None  # type: ignore[operator]
        fields[field_name] = (copy.annotation, copy)
    made = create_model(name, __base__=_Group, **fields)
    made.__doc__ = doc
    return made


#: The run's limits: ``LimitSettings``' fields, each optional; an empty one takes the limits block's.
LimitOptions = _optional_fields(
    LimitSettings, "LimitOptions", "The project's limits for this run; empty fields take the limits block's values."
)


class SpendOptions(_Group):
    """What a run may spend, and which other models may make its images."""

    max_cost_usd: float | None = Field(
        None, gt=0, description="Stop sending at this spend (worst case reserved per call); the rest is deferred."
    )
    fallback_models: list[str] | None = Field(
        None, description="Models to use, in order, when the main one is overloaded, failing or out of quota."
    )
    allow_fallback: bool | None = Field(None, description="False: every image must be made by the main model.")
    retry_blocked: bool = Field(
        False, description="Send again items an earlier run saw blocked by the safety filter (same prompt)."
    )


class ExecutionOptions(_Group):
    """How the run executes: realtime or Gemini Batch mode, and which shard of the catalog."""

    mode: Literal["realtime", "batch", "auto"] | None = Field(
        None, description="realtime, batch (half price, within 24 h) or auto; empty: the job spec's, else realtime."
    )
    deadline_hours: float | None = Field(None, gt=0, description="The job must finish within this many hours.")
    batch_max_items: int = Field(500, ge=1, description="Images per batch at most.")
    batch_poll_max_s: float = Field(300.0, gt=0, description="Longest wait between two polls of a batch.")
    shard_index: int = Field(0, ge=0, description="This run's shard (0-based).")
    shard_count: int = Field(1, ge=1, description="Shards the catalog is split into.")
    shard_deployment: str = Field(
        "catalog-to-images/catalog-shard", description="Scale-out: the deployment each shard runs as."
    )
    shard_wait_s: float = Field(6 * 3600.0, gt=0, description="Scale-out: how long to wait for the shard runs.")

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
        None, description="prefect-gcp GcpCredentials: the service account (and project) of the Vertex AI route."
    )


class RunOptions(BaseModel):
    """Everything a catalog run can be told, apart from the catalog itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    images: ImageOptions = ImageOptions()
    reading: CatalogOptions = CatalogOptions()
    delivery: DeliveryOptions = DeliveryOptions()
    limits: LimitOptions = LimitOptions()  # type: ignore[valid-type]
    spend: SpendOptions = SpendOptions()
    execution: ExecutionOptions = ExecutionOptions()
    blocks: BlockNames = BlockNames()

    def as_parameters(self) -> dict[str, Any]:
        """The catalog flow's parameters (without ``catalog``), JSON-ready, only what is set."""
        dumped = {name: group.model_dump(exclude_unset=True, mode="json") for name, group in self}
        return {name: values for name, values in dumped.items() if values}

    def with_changes(self, **groups: dict[str, Any]) -> RunOptions:
        """A copy with some fields of some groups replaced, e.g. ``execution={"shard_index": 2}``."""
        update = {name: getattr(self, name).model_copy(update=values) for name, values in groups.items()}
        return self.model_copy(update=update)


def resolve_limits(options: BaseModel, block: LimitSettings | None) -> LimitSettings:
    """The run's limits by the merge rule: the run's fields, else the block's, else defaults."""
    base = block.model_dump(include=set(LimitSettings.model_fields)) if block is not None else {}
    given = options.given() if isinstance(options, _Group) else {}
    try:
        return LimitSettings.model_validate({**base, **given})
    except ValueError as exc:  # pydantic's message names the field and the constraint
        raise ConfigurationError(f"limits: {exc}") from None
