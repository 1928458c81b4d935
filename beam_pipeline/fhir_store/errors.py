"""The one error type of the FHIR store client.

Every failure, whether a whole request or one entry of a batch bundle, becomes a `FhirStoreError`. It is
returned inside a `WriteOutcome` for writes and raised for reads. Its fields carry what the dead-letter
record needs (docs/contracts.md, contract 4): a machine-readable code, the retryable flag, the HTTP status, the
server's OperationOutcome and the attempt count.

What never goes in: the access token or any secret, and patient data. `detail` is composed by this
package from fixed phrases, status codes and OperationOutcome issue *codes*; the server's diagnostics
text (which may quote submitted values) stays inside `operation_outcome`, which the error record stores
next to the original payload anyway. `endpoint` is the URL the request went to without its query string,
because a conditional URL carries the business identifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

# Re-exported: the write step's code for an unexpected exception, not an answer of the store.
from beam_pipeline.contracts.error_record import INTERNAL_ERROR as INTERNAL_ERROR

if TYPE_CHECKING:
    import httpx

# Machine-readable codes (`FhirStoreError.code`).
HTTP_ERROR = "http_error"  # the server answered with a failure status (whole request or one entry)
TIMEOUT = "timeout"  # connect, read, write or pool timeout
CONNECTION_ERROR = "connection_error"  # refused, reset, DNS, TLS: no usable answer
INVALID_RESPONSE = "invalid_response"  # a success status with a body that is not the expected FHIR JSON
INVALID_ITEM = "invalid_item"  # the item cannot be turned into a request; nothing was sent
AUTH_ERROR = "auth_error"  # no credentials could be obtained (token endpoint, ADC refresh, secret)
IDENTIFIER_TOO_LONG = "identifier_too_long"  # the business identifier does not fit in a conditional URL
CONFLICT = "conflict"  # the stored resource kept changing between our read and our versioned write
# A conditional reference (`Patient?identifier=...`) matched nothing: the patient or encounter is not stored
# yet. Retryable: a replay after it lands succeeds.
REFERENCE_NOT_FOUND = "reference_not_found"

# How HAPI answers an entry whose conditional reference matches no resource: HTTP 404, diagnostics
# `HAPI-1091: Invalid match URL "Patient?identifier=..." - No resources match this search`. Only matched,
# never copied: the diagnostics quote the identifier.
_UNRESOLVED_REFERENCE_MARKERS = ("HAPI-1091:", "No resources match this search")


class FhirStoreError(Exception):
    """A structured failure; `str()` of it is safe to log (no token, no patient data).

    `retryable`: a later replay may succeed (the error record's flag). `transient`: the client itself
    should try again now, within its retry budget; it defaults to `retryable`. The two differ for faults
    an operator must fix (a revoked permission, a missing store, a rotated secret): resending within
    seconds would only spend the budget, yet a replay after the fix succeeds.
    """

    def __init__(
        self,
        *,
        code: str,
        retryable: bool,
        detail: str,
        http_status: int | None = None,
        operation_outcome: Mapping[str, Any] | None = None,
        attempts: int = 1,
        endpoint: str = "",
        retry_after: float | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.retryable = retryable
        self.detail = detail
        self.http_status = http_status
        self.operation_outcome = dict(operation_outcome) if operation_outcome is not None else None
        self.attempts = attempts
        self.endpoint = endpoint
        # Seconds the server asked us to wait (Retry-After); used by the retry loop, not part of the record.
        self.retry_after = retry_after
        self.transient = retryable if transient is None else transient

    def __str__(self) -> str:
        status = f" HTTP {self.http_status}" if self.http_status is not None else ""
        kind = "retryable" if self.retryable else "permanent"
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"{self.code}{status} ({kind}, {self.attempts} attempt(s)){where}: {self.detail}"

    def __repr__(self) -> str:
        return f"FhirStoreError({self})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only __init__: rebuild from the fields, so outcomes survive pickling between Beam stages.
        return (_rebuild, (self._fields(),))

    def with_attempts(self, attempts: int) -> FhirStoreError:
        return FhirStoreError(**(self._fields() | {"attempts": attempts}))

    def _fields(self) -> dict[str, Any]:
        return self.to_dict() | {"retry_after": self.retry_after, "transient": self.transient}

    def to_dict(self) -> dict[str, Any]:
        """The fields an error record carries, JSON-ready."""
        return {
            "code": self.code,
            "retryable": self.retryable,
            "detail": self.detail,
            "http_status": self.http_status,
            "operation_outcome": self.operation_outcome,
            "attempts": self.attempts,
            "endpoint": self.endpoint,
        }


def _rebuild(fields: dict[str, Any]) -> FhirStoreError:
    return FhirStoreError(**fields)


def internal_error(detail: str) -> FhirStoreError:
    """A defect on our side, not an answer of the store: retryable, so a replay after the fix writes the
    messages, but not resent at once. `detail` names an exception's type only: its message may quote data."""
    return FhirStoreError(code=INTERNAL_ERROR, retryable=True, transient=False, detail=detail)


def outcome_issue_codes(outcome: Mapping[str, Any] | None) -> list[str]:
    """`severity/code` of each OperationOutcome issue: value sets, so safe to put in `detail`."""
    if not isinstance(outcome, Mapping) or outcome.get("resourceType") != "OperationOutcome":
        return []
    codes = []
    for issue in outcome.get("issue") or []:
        if isinstance(issue, Mapping):
            codes.append(f"{issue.get('severity', '?')}/{issue.get('code', '?')}")
    return codes


def json_or_none(response: httpx.Response) -> Any:  # noqa: ANN401  (any parsed JSON)
    """The answer's body as JSON, or None when it is not JSON (an error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


def as_operation_outcome(body: Any) -> dict[str, Any] | None:  # noqa: ANN401  (any parsed JSON)
    """The body when it is an OperationOutcome, else None (HTML error pages, Google API error JSON...)."""
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        return dict(body)
    return None


def redact_url(url: str) -> str:
    """The URL without query, fragment or user info: conditional URLs carry identifiers."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def unresolved_reference(
    status: int, outcome: Mapping[str, Any] | None, *, what: str, endpoint: str = ""
) -> FhirStoreError | None:
    """A retryable reference_not_found error when the store refused an entry because a conditional
    reference in it matched no resource; None for any other failure."""
    if status not in (400, 404, 412, 422) or not isinstance(outcome, Mapping):
        return None
    for issue in outcome.get("issue") or []:
        text = issue.get("diagnostics") if isinstance(issue, Mapping) else None
        if isinstance(text, str) and all(marker in text for marker in _UNRESOLVED_REFERENCE_MARKERS):
            return FhirStoreError(
                code=REFERENCE_NOT_FOUND,
                retryable=True,
                # Resending now rarely helps; the replay DAG re-delivers once the patient has had time to land.
                transient=False,
                detail=f"{what} failed with HTTP {status}: a conditional reference matched no resource",
                http_status=status,
                operation_outcome=outcome,
                endpoint=endpoint,
            )
    return None


def http_error(
    status: int,
    *,
    retryable: bool,
    what: str,
    outcome: Mapping[str, Any] | None = None,
    endpoint: str = "",
    attempts: int = 1,
    retry_after: float | None = None,
    transient: bool | None = None,
) -> FhirStoreError:
    """An error for a failure status; `what` names the request ("batch bundle of 200 entries")."""
    issues = outcome_issue_codes(outcome)
    suffix = f"; issues: {', '.join(issues[:10])}" if issues else ""
    return FhirStoreError(
        code=HTTP_ERROR,
        retryable=retryable,
        detail=f"{what} failed with HTTP {status}{suffix}",
        http_status=status,
        operation_outcome=outcome,
        attempts=attempts,
        endpoint=endpoint,
        retry_after=retry_after,
        transient=transient,
    )
