"""Configuration of the FHIR store client: plain frozen dataclasses, so a Beam DoFn can carry one in its
pickled state and build the client in setup().

Two kinds of target, exactly one per config:
- `healthcare_api`: a Google Cloud Healthcare API FHIR store, addressed like the original sample's flags
  (project, location, dataset, API version) with separate write ("post") and read ("get") stores;
  credentials from Application Default Credentials.
- `base_url`: any FHIR R4 server (HAPI, Azure, AWS HealthLake, Medplum...), optionally with a separate
  `read_base_url`, and auth none, bearer, basic or OAuth2 client credentials.

Secrets (bearer token, password, client secret) are excluded from repr so a logged config leaks nothing.
A config built for a Beam job carries no secret at all: only the Secret Manager resource name
(`AuthConfig.secret_resource_name`), which workers resolve in setup() (`resolve_secret`), so credentials
never enter the pickled job graph or a template.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from beam_pipeline.fhir_store import healthcare_api
from beam_pipeline.fhir_store.retry import RetryPolicy

WRITE_MODES = ("upsert", "conditional_create", "create")
AUTH_KINDS = ("none", "google", "bearer", "basic", "oauth2")
OAUTH2_CLIENT_AUTH = ("post", "basic")
# The credential fields each kind reads from its secret.
SECRET_FIELDS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "oauth2": ("token_url", "client_id", "client_secret", "scope", "audience", "client_auth"),
}
# The fields each kind cannot do without.
REQUIRED_FIELDS = {
    "bearer": ("token",),
    "basic": ("username", "password"),
    "oauth2": ("token_url", "client_id", "client_secret"),
}


@dataclass(frozen=True)
class AuthConfig:
    """How requests authenticate. `kind=None` means the target's default: google for the Healthcare API,
    none for a base URL.

    - google: Application Default Credentials with `scopes` (or the credentials given to the client).
    - bearer: a fixed `token`.
    - basic: `username` and `password`.
    - oauth2: client credentials grant at `token_url` with `client_id`/`client_secret` (sent in the form
      body, `client_auth="post"`, or as HTTP Basic, `client_auth="basic"`), optional `scope`/`audience`.
    Tokens that expire are refreshed `refresh_margin` seconds before their expiry (at most a quarter of
    their lifetime), and once on a 401.

    `secret_resource_name` instead of the credential fields: the Secret Manager version that holds them,
    read where the client is built (`resolve_secret`), so the config itself carries no secret.
    """

    kind: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str | None = None
    audience: str | None = None
    client_auth: str = "post"
    scopes: tuple[str, ...] = healthcare_api.SCOPES
    refresh_margin: float = 300.0
    secret_resource_name: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in AUTH_KINDS:
            raise ValueError(f"auth kind must be one of {AUTH_KINDS}")
        if self.client_auth not in OAUTH2_CLIENT_AUTH:
            raise ValueError(f"client_auth must be one of {OAUTH2_CLIENT_AUTH}")
        if not self.unresolved:
            self.check_complete()

    def check_complete(self) -> None:
        missing = [name for name in REQUIRED_FIELDS.get(self.kind or "", ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth kind {self.kind!r} needs {', '.join(missing)}")

    @classmethod
    def from_secret(cls, kind: str, secret: Mapping[str, Any] | None) -> AuthConfig:
        """From the JSON of --fhir_auth_secret_resource_name: {"token"}, {"username", "password"} or
        {"token_url", "client_id", "client_secret", "scope", "audience", "client_auth"}."""
        data = dict(secret or {})
        # Only the fields of this kind: a secret holding more (a token and a password) carries nothing else.
        names = set(SECRET_FIELDS.get(kind, ())) - {"client_auth"}
        kwargs: dict[str, Any] = {k: str(v) for k, v in data.items() if k in names and v is not None}
        if kind == "oauth2" and data.get("client_auth"):
            kwargs["client_auth"] = str(data["client_auth"])
        return cls(kind=kind, **kwargs)

    @property
    def unresolved(self) -> bool:
        """Does this config name a secret whose credentials have not been read yet?"""
        return bool(self.secret_resource_name) and not any(
            getattr(self, name) for name in ("token", "password", "client_secret")
        )


@dataclass(frozen=True)
class HealthcareApiStore:
    """A Healthcare API FHIR store pair: `write_store` receives the bundles, `read_store` answers searches
    and defaults to the write store."""

    project_id: str
    location: str
    dataset: str
    write_store: str
    read_store: str | None = None
    api_version: str = "v1"
    api_endpoint: str = healthcare_api.DEFAULT_ENDPOINT

    def __post_init__(self) -> None:
        for name in ("project_id", "location", "dataset", "write_store", "api_version"):
            healthcare_api.check_segment(name, getattr(self, name))
        if self.read_store is not None:
            healthcare_api.check_segment("read_store", self.read_store)

    @property
    def effective_read_store(self) -> str:
        return self.read_store or self.write_store

    def fhir_base_url(self, store: str) -> str:
        return healthcare_api.fhir_base_url(
            self.api_endpoint, self.api_version, self.project_id, self.location, self.dataset, store
        )

    def store_url(self, store: str) -> str:
        return healthcare_api.store_url(
            self.api_endpoint, self.api_version, self.project_id, self.location, self.dataset, store
        )


@dataclass(frozen=True)
class FhirStoreConfig:
    """Everything the client needs; every field has a default except the target.

    Writes: `write_mode` upsert (conditional update on the business identifier, idempotent),
    conditional_create (If-None-Exist) or create (plain POST). `bundle_size` entries per batch bundle,
    at most `max_bundles_in_flight` bundles at once over a keep-alive pool of as many connections.
    """

    base_url: str | None = None
    read_base_url: str | None = None
    healthcare_api: HealthcareApiStore | None = None
    auth: AuthConfig = field(default_factory=AuthConfig)
    write_mode: str = "upsert"
    bundle_size: int = 200
    max_bundles_in_flight: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    connect_timeout: float = 10.0
    # Large bundles with server-side profile validation take tens of seconds on a busy server.
    read_timeout: float = 120.0
    write_timeout: float = 60.0
    pool_timeout: float = 60.0
    keepalive_expiry: float = 60.0
    # A bundle the server rejects as a whole (400/413/422) is halved until the bad entries stand alone.
    split_rejected_bundles: bool = True
    # Refuse items without a business identifier in upsert/conditional_create instead of plain-creating them.
    require_identifier: bool = False
    # Prefer: return=minimal, so batch responses carry status/location/etag but not the resources back.
    prefer_minimal: bool = True
    user_agent: str = "kafka-to-fhir-fhir-store-client/0.1"
    extra_headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if (self.base_url is None) == (self.healthcare_api is None):
            raise ValueError("set exactly one of base_url and healthcare_api")
        if self.read_base_url is not None and self.base_url is None:
            raise ValueError("read_base_url goes with base_url; the Healthcare API uses read_store")
        for url in (self.base_url, self.read_base_url):
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError("FHIR base URLs must be http(s) URLs")
        if self.write_mode not in WRITE_MODES:
            raise ValueError(f"write_mode must be one of {WRITE_MODES}")
        if self.bundle_size < 1:
            raise ValueError("bundle_size must be at least 1")
        if self.max_bundles_in_flight < 1:
            raise ValueError("max_bundles_in_flight must be at least 1")

    @property
    def auth_kind(self) -> str:
        if self.auth.kind is not None:
            return self.auth.kind
        return "google" if self.healthcare_api is not None else "none"

    @property
    def write_base(self) -> str:
        """Base URL bundles are POSTed to (no trailing slash)."""
        if self.healthcare_api is not None:
            return self.healthcare_api.fhir_base_url(self.healthcare_api.write_store)
        return str(self.base_url).rstrip("/")

    @property
    def read_base(self) -> str:
        """Base URL searches go to (no trailing slash)."""
        if self.healthcare_api is not None:
            return self.healthcare_api.fhir_base_url(self.healthcare_api.effective_read_store)
        return str(self.read_base_url or self.base_url).rstrip("/")

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], auth_secret: Mapping[str, Any] | None = None) -> FhirStoreConfig:
        """From the pipeline's flags (beam_pipeline/job_flags.py names), e.g. `options.get_all_options()`.

        `--fhir_base_url` wins over the `--hcapi_*` store. For bearer/basic/oauth2, `auth_secret` is the
        parsed JSON of `--fhir_auth_secret_resource_name`; without it the config keeps only that name, to
        be resolved where the client is built (the pipeline's workers), never in the job graph.
        """
        kind = flags.get("fhir_auth")
        secret_name = flags.get("fhir_auth_secret_resource_name") or None
        if kind in SECRET_FIELDS and auth_secret is None and secret_name:
            auth = AuthConfig(kind=kind, secret_resource_name=secret_name)
        elif kind:
            auth = AuthConfig.from_secret(kind, auth_secret)
        else:
            auth = AuthConfig()
        common: dict[str, Any] = {"auth": auth}
        for name in ("write_mode", "bundle_size", "max_bundles_in_flight"):
            if flags.get(name) is not None:
                common[name] = flags[name]
        if flags.get("fhir_base_url"):
            return cls(base_url=flags["fhir_base_url"], **common)
        missing = [
            f"--hcapi_{n}"
            for n in ("project_id", "location", "dataset", "post_fhir_store")
            if not flags.get(f"hcapi_{n}")
        ]
        if missing:
            raise ValueError(f"set --fhir_base_url, or all of {', '.join(missing)}")
        store = HealthcareApiStore(
            project_id=flags["hcapi_project_id"],
            location=flags["hcapi_location"],
            dataset=flags["hcapi_dataset"],
            write_store=flags["hcapi_post_fhir_store"],
            read_store=flags.get("hcapi_get_fhir_store") or None,
            api_version=flags.get("hcapi_version") or "v1",
        )
        return cls(healthcare_api=store, **common)

    def resolve_secret(self, read_secret: Callable[[str], bytes]) -> FhirStoreConfig:
        """This config with the credentials of its named secret filled in (itself when there is none to read).

        `read_secret` returns the payload of a Secret Manager version; it is called here, on the worker.
        """
        auth = self.auth
        if not auth.unresolved or auth.kind is None:
            return self
        try:
            data = json.loads(read_secret(str(auth.secret_resource_name)))
        except ValueError:
            raise ValueError("the FHIR auth secret is not JSON") from None
        if not isinstance(data, Mapping):
            raise ValueError("the FHIR auth secret is not a JSON object")
        fields = AuthConfig.from_secret(auth.kind, {k: v for k, v in data.items() if v is not None})
        resolved = replace(auth, **{name: getattr(fields, name) for name in SECRET_FIELDS.get(auth.kind, ())})
        if resolved.unresolved:  # the secret holds none of the credentials this kind needs
            resolved = replace(resolved, secret_resource_name=None)  # raises, naming the missing fields
        resolved.check_complete()
        return replace(self, auth=resolved)
