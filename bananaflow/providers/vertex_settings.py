"""Vertex AI settings from the environment, by google-genai's own conventions.

``GOOGLE_GENAI_USE_VERTEXAI=true`` (or ``BANANAFLOW_PROVIDER=vertex``) selects the route;
``GOOGLE_CLOUD_PROJECT`` names the project (else the ``project_id`` of the service-account
file in ``GOOGLE_APPLICATION_CREDENTIALS``), ``GOOGLE_CLOUD_LOCATION`` the location
(``global`` by default: Google's global endpoint, the one with the fewest 429s), and
``GOOGLE_VERTEX_BASE_URL`` replaces the host root (``https://aiplatform.googleapis.com`` for
``global``, ``https://{location}-aiplatform.googleapis.com`` otherwise) while the path stays
``/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``.
Credentials are ADC, fetched lazily by ``bananaflow.providers.gcp_auth``: nothing here
touches the network.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bananaflow.errors import ConfigurationError

DEFAULT_LOCATION = "global"
GLOBAL_HOST_ROOT = "https://aiplatform.googleapis.com"
_LOCATION = re.compile(r"^[a-z0-9-]{2,40}$")
_PROJECT = re.compile(r"^[a-z0-9.:-]{2,100}$")


#: Multi-region locations, served from ``aiplatform.{location}.rep.googleapis.com`` (as google-genai does).
MULTI_REGIONS = ("us", "eu")


def vertex_host_root(location: str) -> str:
    """Google's host for a location: the global endpoint, a multi-region one, or the regional one."""
    if location == "global":
        return GLOBAL_HOST_ROOT
    if location in MULTI_REGIONS:
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def check_project_location(project: str | None, location: str) -> str:
    """The project, after checking both values are usable in a URL path; one clear line otherwise."""
    if not project:
        raise ConfigurationError(
            "Vertex AI needs a project: set GOOGLE_CLOUD_PROJECT (or use a service-account file "
            "with a project_id in GOOGLE_APPLICATION_CREDENTIALS)"
        )
    if not _PROJECT.match(project):
        raise ConfigurationError(f"GOOGLE_CLOUD_PROJECT={project!r} is not a Google Cloud project id")
    if not _LOCATION.match(location):
        raise ConfigurationError(f"GOOGLE_CLOUD_LOCATION={location!r} is not a location such as global or us-central1")
    return project


def project_from_credentials_file(path: str | None) -> str | None:
    """The ``project_id`` a service-account JSON names (read locally, no network)."""
    if not path:
        return None
    try:
        info: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # google-auth reports an unreadable file, with its own words, on first use
    project = info.get("project_id") if isinstance(info, dict) else None
    return str(project) if project else None


def vertex_fields_from_env(
    env: Mapping[str, str], *, model: str, timeout_s: float, verify_size: bool | None
) -> dict[str, Any]:
    """The fields of a ``ProviderSettings`` of kind ``vertex`` from the environment
    (``ProviderSettings.from_env`` builds it, so this module needs no import of it)."""
    location = env.get("GOOGLE_CLOUD_LOCATION", DEFAULT_LOCATION).lower()
    project = env.get("GOOGLE_CLOUD_PROJECT") or project_from_credentials_file(env.get("GOOGLE_APPLICATION_CREDENTIALS"))
    check_project_location(project, location)
    return dict(
        kind="vertex",
        base_url=env.get("GOOGLE_VERTEX_BASE_URL") or vertex_host_root(location),
        api_key=None,
        auth_style="bearer",
        model=model,
        timeout_s=timeout_s,
        verify_size=verify_size,
        project=project,
        location=location,
    )


#: Where batch prediction jobs go when the run's location is ``global`` (or a multi-region):
#: a ``batchPredictionJobs`` resource lives in one region, and Google's batch guides and
#: samples create it in us-central1, the region every Gemini image model is served in.
DEFAULT_BATCH_LOCATION = "us-central1"
BATCH_LOCATION_ENV = "BANANAFLOW_VERTEX_BATCH_LOCATION"


def vertex_batch_location(location: str | None, env: Mapping[str, str]) -> str:
    """The region batch jobs are created in: ``BANANAFLOW_VERTEX_BATCH_LOCATION``, else the
    run's own region, else (for ``global``, ``us``, ``eu``) us-central1."""
    chosen = (env.get(BATCH_LOCATION_ENV) or "").strip().lower()
    if not chosen:
        chosen = location if location and location != DEFAULT_LOCATION and location not in MULTI_REGIONS \
            else DEFAULT_BATCH_LOCATION
    if chosen == DEFAULT_LOCATION or chosen in MULTI_REGIONS or not _LOCATION.match(chosen):
        raise ConfigurationError(f"{BATCH_LOCATION_ENV}={chosen!r} must be a region such as us-central1: "
                                 "Vertex batch prediction jobs are regional")
    return chosen
