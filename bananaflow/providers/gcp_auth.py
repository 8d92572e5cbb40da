"""Google Cloud access tokens for Vertex AI: ADC through google-auth, one token per process.

Credentials come from google-auth's Application Default Credentials chain (the
``GOOGLE_APPLICATION_CREDENTIALS`` service-account file, ``gcloud auth application-default
login``, or the metadata server on Google Cloud), or from a service-account JSON given
explicitly (a prefect-gcp ``GcpCredentials`` block). A token is fetched once and shared by
every request of the process (every provider, every event loop, every thread) until it is
within ``REFRESH_MARGIN_S`` of its expiry; only then does one caller refresh it while the
others wait for that refresh instead of starting their own. google-auth's ``requests``
transport honours ``HTTPS_PROXY``/``NO_PROXY`` like every other client of bananaflow.

Tokens are registered with ``bananaflow.secrets`` as soon as they are fetched, so they are
masked in any log line or message; errors carry google-auth's reason, never the key.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

from bananaflow.errors import AuthError, ConfigurationError, NetworkError
from bananaflow.secrets import Secret, redact, register_secret

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: Refresh this long before the token expires, so no request is sent with a token that
#: expires in flight (a 4K image can take minutes).
REFRESH_MARGIN_S = 300.0

_registry_lock = threading.Lock()
_registry: dict[str, AccessTokens] = {}


class AccessTokens:
    """A bearer token from one set of google-auth credentials, refreshed before expiry.

    ``fetches`` counts token requests actually sent (tests and ``doctor`` read it).
    """

    def __init__(self, credentials: Any, *, source: str) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        self.source = source
        self.fetches = 0

    def __repr__(self) -> str:
        return f"AccessTokens(source={self.source!r}, fetches={self.fetches})"

    @property
    def credentials(self) -> Any:
        """The google-auth credentials themselves (for Google's own clients, e.g. Cloud Storage)."""
        return self._credentials

    @property
    def service_account(self) -> str | None:
        """The service account's e-mail, for messages that name who needs an IAM role."""
        email = getattr(self._credentials, "service_account_email", None)
        return email if isinstance(email, str) and "@" in email else None

    def _current(self) -> str | None:
        token = getattr(self._credentials, "token", None)
        expiry = getattr(self._credentials, "expiry", None)
        if not isinstance(token, str) or not token:
            return None
        if expiry is None:
            return token
        left = expiry.replace(tzinfo=UTC) - datetime.now(UTC) if expiry.tzinfo is None else expiry - datetime.now(UTC)
        return token if left.total_seconds() > REFRESH_MARGIN_S else None

    async def token(self) -> str:
        """A token valid for at least ``REFRESH_MARGIN_S`` more seconds."""
        current = self._current()
        if current is not None:
            return current
        return await asyncio.to_thread(self.token_blocking)

    def token_blocking(self) -> str:
        """The same, for synchronous callers (and the worker thread of ``token``)."""
        with self._lock:  # one refresh at a time; the others find it done
            current = self._current()
            if current is not None:
                return current
            error = _refresh(self._credentials, self.source)
            if error is not None:
                raise error
            self.fetches += 1
            token = str(self._credentials.token)
            register_secret(token)
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the server said 401), so the next caller fetches a new one."""
        with self._lock:
            if getattr(self._credentials, "token", None) == token:
                self._credentials.token = None


def _refresh(credentials: Any, source: str) -> Exception | None:
    """Refresh through google-auth; a classified error (not raised here, to keep google-auth's
    exception and its request out of the traceback's context)."""
    import google.auth.exceptions
    import google.auth.transport.requests

    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.RefreshError as exc:
        return AuthError(f"Vertex AI: the token endpoint refused the credentials from {source}: {_reason(exc)}; "
                         "check the service-account key is current (not deleted or disabled)", http_status=401)
    except google.auth.exceptions.TransportError as exc:
        return NetworkError(f"Vertex AI: could not reach the token endpoint for {source}: {_reason(exc)}")
    return None


def _reason(exc: BaseException) -> str:
    first = exc.args[0] if exc.args else type(exc).__name__
    return " ".join(redact(str(first)).split())[:200]


def credentials_from_info(info: dict[str, Any]) -> Any:
    """google-auth credentials from a service-account (or authorized-user) JSON document."""
    import google.auth.exceptions
    from google.oauth2 import credentials as user_credentials
    from google.oauth2 import service_account

    try:
        if info.get("type") == "authorized_user":
            return user_credentials.Credentials.from_authorized_user_info(info, scopes=list(SCOPES))
        if info.get("type") != "service_account":
            raise ValueError(f"type {info.get('type')!r} is not service_account or authorized_user")
        credentials = service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except (google.auth.exceptions.DefaultCredentialsError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"the Google Cloud credentials are not usable: {_reason(exc)}") from None
    return credentials


def default_credentials() -> Any:
    """google-auth's ADC chain; none found is one line saying how to provide them."""
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigurationError(
            "no Google Cloud credentials for Vertex AI: set GOOGLE_APPLICATION_CREDENTIALS to a service-account "
            f"JSON file, run `gcloud auth application-default login`, or run on Google Cloud ({_reason(exc)})"
        ) from None
    return credentials


def shared_tokens(gcp_credentials: Secret | None = None) -> AccessTokens:
    """The process-wide token source for these credentials (ADC when ``None``)."""
    if gcp_credentials is not None:
        raw = gcp_credentials.reveal()
        key = "info:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()
    else:
        import os

        key = "adc:" + os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    with _registry_lock:
        tokens = _registry.get(key)
        if tokens is None:
            if gcp_credentials is not None:
                info = _parse_info(gcp_credentials)
                tokens = AccessTokens(credentials_from_info(info), source="the given service-account JSON")
            else:
                tokens = AccessTokens(default_credentials(), source=_adc_source())
            _registry[key] = tokens
        return tokens


def forget_shared_tokens() -> None:
    """Drop every cached token source (tests that rotate keys)."""
    with _registry_lock:
        _registry.clear()


def _parse_info(secret: Secret) -> dict[str, Any]:
    try:
        info = json.loads(secret.reveal())
    except ValueError:
        raise ConfigurationError("the Google Cloud credentials are not a JSON document (service-account key file)") from None
    if not isinstance(info, dict):
        raise ConfigurationError("the Google Cloud credentials are not a JSON object (service-account key file)")
    return info


def _adc_source() -> str:
    import os

    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    return f"GOOGLE_APPLICATION_CREDENTIALS ({path})" if path else "application default credentials"
