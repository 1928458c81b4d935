"""HTTP with one FHIR store: the keep-alive connection pool with its auth, one exchange at a time, and reads
(a GET, or a POST _search) resent within the retry policy. Every request of a client goes through here,
so transport failures and error answers become FhirStoreErrors in one place, and `requests` counts them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from beam_pipeline.fhir_store import errors
from beam_pipeline.fhir_store.auth import build_auth
from beam_pipeline.fhir_store.config import FhirStoreConfig
from beam_pipeline.fhir_store.errors import json_or_none
from beam_pipeline.fhir_store.retry import RetryPolicy, parse_retry_after, request_failure_class
from beam_pipeline.fhir_store.stats import ClientStats


@dataclass(frozen=True)
class Pacing:
    """The clock, sleep and jitter every retry loop of one client uses (tests pass fakes)."""

    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    rng: random.Random


class StoreHttp:
    """One httpx.Client for the store, sized to the bundles in flight; closed with the FHIR store client."""

    def __init__(
        self,
        config: FhirStoreConfig,
        stats: ClientStats,
        pacing: Pacing,
        *,
        transport: httpx.BaseTransport | None,
        google_credentials: Any,  # noqa: ANN401  (google.auth.credentials.Credentials)
        google_request_factory: Callable[[], Any] | None,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._stats = stats
        self._pacing = pacing
        timeout = httpx.Timeout(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.write_timeout,
            pool=config.pool_timeout,
        )
        # Room for every bundle in flight plus a search or check running beside them.
        connections = config.max_bundles_in_flight + 2
        limits = httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=config.keepalive_expiry,
        )
        self._token_http: httpx.Client | None = None
        if config.auth_kind == "oauth2":
            # Its own client: token requests must not go through the FHIR client's Auth (or its pool).
            self._token_http = httpx.Client(
                timeout=timeout, transport=transport, headers={"User-Agent": config.user_agent}
            )
        if transport is None:
            # retries=0: httpx's own connect retries would hide attempts from our budget and counters.
            transport = httpx.HTTPTransport(limits=limits, retries=0)
        auth = build_auth(
            config,
            token_http=self._token_http,
            google_credentials=google_credentials,
            google_request_factory=google_request_factory,
            clock=clock,
        )
        headers = {"Accept": "application/fhir+json", "User-Agent": config.user_agent}
        headers.update(dict(config.extra_headers))
        self._http = httpx.Client(
            auth=auth,
            timeout=timeout,
            headers=headers,
            transport=transport,
            follow_redirects=False,  # a redirect would resend the token to wherever it points
        )

    def close(self) -> None:
        self._http.close()
        if self._token_http is not None:
            self._token_http.close()

    def send(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:  # noqa: ANN401
        """One HTTP exchange; transport failures become retryable FhirStoreErrors."""
        endpoint = f"{method} {errors.redact_url(url)}"
        self._stats.add("requests")
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.FhirStoreError(
                code=errors.TIMEOUT, retryable=True, detail=f"{what}: {type(exc).__name__}", endpoint=endpoint
            ) from None
        except httpx.TransportError as exc:
            raise errors.FhirStoreError(
                code=errors.CONNECTION_ERROR,
                retryable=True,
                detail=f"{what}: {type(exc).__name__}",
                endpoint=endpoint,
            ) from None
        except errors.FhirStoreError as exc:  # from the auth layer (token endpoint, ADC refresh)
            exc.endpoint = exc.endpoint or endpoint
            raise

    def response_error(
        self, response: httpx.Response, what: str, *, method: str = "POST", url: str | None = None
    ) -> errors.FhirStoreError:
        """The FhirStoreError of an error answer, classed retryable and transient by its status."""
        status = response.status_code
        retryable, transient = request_failure_class(status)
        return errors.http_error(
            status,
            retryable=retryable,
            transient=transient,
            what=what,
            outcome=errors.as_operation_outcome(json_or_none(response)),
            endpoint=f"{method} {errors.redact_url(url or self._config.write_base)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    def get_json(
        self, url: str, params: Mapping[str, str] | None, what: str, retry: RetryPolicy | None = None
    ) -> dict[str, Any]:
        """GET with the retry policy (GETs are safe to repeat); raises FhirStoreError."""
        return self.read_json("GET", url, what, retry, params=params)

    def read_json(
        self, method: str, url: str, what: str, retry: RetryPolicy | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A read (GET, or a POST _search) with the retry policy; raises FhirStoreError."""
        policy = retry or self._config.retry
        started = self._pacing.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                # no-cache: HAPI reuses identical search results for a minute by default, and a reference
                # lookup must see a resource written seconds ago.
                response = self.send(method, url, what=what, headers={"Cache-Control": "no-cache"}, **kwargs)
                if response.is_success:
                    body = json_or_none(response)
                    if isinstance(body, dict):
                        return body
                    error = errors.FhirStoreError(
                        code=errors.INVALID_RESPONSE,
                        retryable=False,
                        detail=f"{what}: the body is not JSON",
                        http_status=response.status_code,
                        endpoint=f"{method} {errors.redact_url(url)}",
                    )
                else:
                    error = self.response_error(response, what, method=method, url=url)
            except errors.FhirStoreError as exc:
                error = exc
            delay = policy.next_delay(attempt, self._pacing.monotonic() - started, error.retry_after, self._pacing.rng)
            if not error.transient or delay is None:
                raise error.with_attempts(attempt)
            self._stats.add("retries")
            self._pacing.sleep(delay)
