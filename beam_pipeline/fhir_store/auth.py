"""Authentication strategies, as httpx.Auth objects the client's one httpx.Client uses for every request.

- none: no Auth object.
- bearer: a fixed token (`StaticBearerAuth`); a 401 is final, there is nothing to refresh.
- basic: httpx.BasicAuth.
- google and oauth2: `RefreshingTokenAuth` over a token source. The token is cached and shared by all
  threads of the client; it is fetched again only when it is within the refresh margin of its expiry,
  and once more when the server answers 401 (revoked or rotated early). The margin is `refresh_margin`
  seconds, but never more than a quarter of the token's lifetime, so a token that lives 300 s or less is
  not fetched again for every request. A second 401 goes back to the caller (retryable, not resent: the
  credentials need an operator). The original sample refreshed a Google token for every message.

Tokens never appear in repr, logs or errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from beam_pipeline.fhir_store import errors
from beam_pipeline.fhir_store.config import AuthConfig, FhirStoreConfig
from beam_pipeline.fhir_store.retry import is_retryable_status

# The refresh margin is at most this fraction of a token's lifetime (seen when it is obtained).
REFRESH_MARGIN_FRACTION = 0.25


@dataclass(frozen=True)
class AccessToken:
    """Headers that authenticate a request, and when they stop doing so (epoch seconds; None = never)."""

    headers: Mapping[str, str] = field(repr=False)
    expires_at: float | None = None


class TokenSource(Protocol):
    def initial(self) -> AccessToken | None:
        """A token already held (e.g. credentials built with one), or None."""

    def fetch(self) -> AccessToken:
        """A new token; raises FhirStoreError(code=auth_error) when none can be had."""


class RefreshingTokenAuth(httpx.Auth):
    """Caches a token from `source`; refreshes it near expiry and once on a 401. Thread-safe."""

    def __init__(
        self,
        source: TokenSource,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self._token_margin = refresh_margin
        self.fetch_count = 0  # how many times a new token was fetched (for tests and metrics)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.current_token()
        request.headers.update(token.headers)
        response = yield request
        if response.status_code == 401:
            # One refresh per request: the token may have been revoked or rotated before its expiry.
            fresh = self._refresh_after_rejection(token)
            request.headers.update(fresh.headers)
            yield request

    def current_token(self) -> AccessToken:
        token = self._token
        if token is not None and self._fresh(token):
            return token
        with self._lock:
            # Another thread may have refreshed while this one waited for the lock.
            if self._token is None:
                initial = self._source.initial()
                if initial is not None:
                    self._adopt(initial)
            if self._token is None or not self._fresh(self._token):
                self._adopt(self._fetch())
            assert self._token is not None
            return self._token

    def _refresh_after_rejection(self, rejected: AccessToken) -> AccessToken:
        with self._lock:
            if self._token is not None and self._token is not rejected and self._fresh(self._token):
                return self._token  # a concurrent request already replaced the rejected token
            return self._adopt(self._fetch())

    def _fetch(self) -> AccessToken:
        self.fetch_count += 1
        return self._source.fetch()

    def _adopt(self, token: AccessToken) -> AccessToken:
        # A short-lived token (300 s or less) would be inside a fixed 300 s margin from the start.
        margin = self._margin
        if token.expires_at is not None:
            lifetime = max(0.0, token.expires_at - self._clock())
            margin = min(margin, lifetime * REFRESH_MARGIN_FRACTION)
        self._token, self._token_margin = token, margin
        return token

    def _fresh(self, token: AccessToken) -> bool:
        return token.expires_at is None or token.expires_at - self._clock() > self._token_margin


class StaticBearerAuth(httpx.Auth):
    """A fixed bearer token (e.g. a long-lived API key); nothing to refresh."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "StaticBearerAuth(<token>)"


class GoogleCredentialsSource:
    """Tokens from google-auth credentials (Application Default Credentials by default).

    `credentials.apply()` writes the headers Google APIs expect: the bearer token and, when the credentials
    name a quota project, x-goog-user-project. `request_factory` makes the google.auth transport request used
    to refresh; the default is the requests-based one that google-auth ships.
    """

    def __init__(self, credentials: Any, request_factory: Callable[[], Any] | None = None) -> None:  # noqa: ANN401
        self._credentials = credentials
        self._request_factory = request_factory or _default_google_request
        self._request: Any = None  # made once: refreshes are rare, but each would otherwise open a session

    def initial(self) -> AccessToken | None:
        return self._token() if getattr(self._credentials, "token", None) else None

    def fetch(self) -> AccessToken:
        from google.auth import exceptions as google_exceptions

        try:
            if self._request is None:
                self._request = self._request_factory()
            self._credentials.refresh(self._request)
        except google_exceptions.TransportError:
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR, retryable=True, detail="could not reach the Google token service"
            ) from None
        except google_exceptions.GoogleAuthError as exc:
            # Retryable either way: revoked or misconfigured credentials are fixed by an operator, and the
            # replay after the fix succeeds. Resent at once only when google-auth says the fault is passing.
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR,
                retryable=True,
                transient=bool(getattr(exc, "retryable", False)),
                detail=f"Google credentials could not be refreshed ({type(exc).__name__})",
            ) from None
        if not getattr(self._credentials, "token", None):
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR,
                retryable=True,
                transient=False,
                detail="Google credentials refreshed without a token",
            )
        return self._token()

    def _token(self) -> AccessToken:
        headers: dict[str, str] = {}
        self._credentials.apply(headers)
        expiry = getattr(self._credentials, "expiry", None)
        return AccessToken(headers=headers, expires_at=_utc_timestamp(expiry) if expiry else None)


class OAuth2ClientCredentialsSource:
    """RFC 6749 client credentials grant against `token_url`, over its own small httpx client (the FHIR
    client's Auth must not recurse into itself)."""

    def __init__(self, config: AuthConfig, http: httpx.Client, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._http = http
        self._clock = clock

    def initial(self) -> AccessToken | None:
        return None

    def fetch(self) -> AccessToken:
        c = self._config
        data = {"grant_type": "client_credentials"}
        if c.scope:
            data["scope"] = c.scope
        if c.audience:
            data["audience"] = c.audience
        auth = None
        if c.client_auth == "basic":
            # RFC 6749 2.3.1: id and secret are form-encoded before they go into the Basic header.
            auth = httpx.BasicAuth(quote(str(c.client_id), safe=""), quote(str(c.client_secret), safe=""))
        else:
            data |= {"client_id": str(c.client_id), "client_secret": str(c.client_secret)}
        endpoint = errors.redact_url(str(c.token_url))
        started = self._clock()
        try:
            response = self._http.post(str(c.token_url), data=data, auth=auth, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR, retryable=True, detail="token endpoint timed out", endpoint=endpoint
            ) from None
        except httpx.TransportError as exc:
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR,
                retryable=True,
                detail=f"token endpoint unreachable ({type(exc).__name__})",
                endpoint=endpoint,
            ) from None
        body = errors.json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            # The OAuth error code (invalid_client, invalid_scope...) is safe to report; descriptions are not
            # needed and the body is never echoed.
            oauth_error = body.get("error") if isinstance(body, dict) else None
            reason = f" ({oauth_error})" if isinstance(oauth_error, str) and oauth_error.isascii() else ""
            # Retryable either way (a rotated client secret is fixed by an operator, then replayed); resent
            # at once only for a passing fault of the token endpoint.
            raise errors.FhirStoreError(
                code=errors.AUTH_ERROR,
                retryable=True,
                transient=is_retryable_status(response.status_code),
                detail=f"token endpoint answered HTTP {response.status_code}{reason}",
                http_status=response.status_code,
                endpoint=endpoint,
            )
        try:
            expires_at: float | None = started + float(body["expires_in"])
        except (KeyError, TypeError, ValueError):
            expires_at = None  # no lifetime given: use it until the server answers 401
        return AccessToken(headers={"Authorization": f"Bearer {body['access_token']}"}, expires_at=expires_at)


def build_auth(
    config: FhirStoreConfig,
    *,
    token_http: httpx.Client | None = None,
    google_credentials: Any = None,  # noqa: ANN401  (any google.auth.credentials.Credentials)
    google_request_factory: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> httpx.Auth | None:
    """The Auth object for `config`; `token_http` is the client OAuth2 token requests go through."""
    a = config.auth
    kind = config.auth_kind
    if kind == "none":
        return None
    if kind == "bearer":
        return StaticBearerAuth(str(a.token))
    if kind == "basic":
        return httpx.BasicAuth(str(a.username), str(a.password))
    if kind == "oauth2":
        if token_http is None:
            raise ValueError("oauth2 auth needs an httpx client for the token endpoint")
        source: TokenSource = OAuth2ClientCredentialsSource(a, token_http, clock=clock)
        return RefreshingTokenAuth(source, refresh_margin=a.refresh_margin, clock=clock)
    if kind == "google":
        if google_credentials is None:
            import google.auth

            google_credentials, _ = google.auth.default(scopes=list(a.scopes))
        source = GoogleCredentialsSource(google_credentials, google_request_factory)
        return RefreshingTokenAuth(source, refresh_margin=a.refresh_margin, clock=clock)
    raise ValueError(f"unknown auth kind {kind!r}")


def _default_google_request() -> Any:  # noqa: ANN401
    import google.auth.transport.requests

    return google.auth.transport.requests.Request()


def _utc_timestamp(expiry: datetime) -> float:
    # google-auth keeps expiry as a naive datetime in UTC.
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return expiry.timestamp()
