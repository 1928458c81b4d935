"""Auth strategies: token caching and refresh near expiry, one refresh on 401, OAuth2 client credentials,
bearer and basic; google-auth credentials objects, a recorded request log, no network."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs

import google.auth.exceptions
import google.oauth2.credentials
import httpx
import pytest
from fhir_fakes import BASE, CountingCredentials, item

from beam_pipeline.fhir_store import AuthConfig, FhirStoreConfig, RetryPolicy, errors
from beam_pipeline.fhir_store.auth import (
    AccessToken,
    GoogleCredentialsSource,
    RefreshingTokenAuth,
    build_auth,
)


def _auth_headers(server):
    return [r.headers.get("authorization") for r in server.log]


def test_google_token_is_cached_and_refreshed_only_near_expiry(server, make_client, fake_time):
    creds = CountingCredentials(fake_time.time, lifetime=3600)
    client = make_client(
        auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=lambda: "transport-request"
    )
    for i in range(5):
        client.write([item(f"P{i}")])
    assert creds.refreshes == 1
    assert _auth_headers(server) == ["Bearer token-1"] * 5
    assert creds.requests_seen == ["transport-request"]
    fake_time.now += 3600 - 301  # still outside the 300 s margin
    client.write([item("Q")])
    assert creds.refreshes == 1
    fake_time.now += 2  # now within the margin: refresh before the request, not after a 401
    client.write([item("R")])
    assert creds.refreshes == 2
    assert _auth_headers(server)[-1] == "Bearer token-2"


def test_google_quota_project_header(server, make_client, fake_time):
    creds = CountingCredentials(fake_time.time, quota_project="billing-project")
    make_client(auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=object).write(
        [item("P")]
    )
    assert server.log[0].headers["x-goog-user-project"] == "billing-project"


def test_oauth2_user_credentials_with_a_valid_token_need_no_refresh(server, make_client, fake_time):
    expiry = datetime.fromtimestamp(fake_time.now + 3000, UTC).replace(tzinfo=None)
    creds = google.oauth2.credentials.Credentials(token="preset-token", expiry=expiry, quota_project_id="q-proj")

    def no_transport():
        raise AssertionError("a valid token must not trigger a refresh")

    make_client(auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=no_transport).write(
        [item("P")]
    )
    assert server.log[0].headers["authorization"] == "Bearer preset-token"
    assert server.log[0].headers["x-goog-user-project"] == "q-proj"


def test_a_401_refreshes_once_and_resends(server, make_client, fake_time):
    creds = CountingCredentials(fake_time.time)
    server.on_request = lambda request, n: (
        httpx.Response(401) if request.headers["authorization"] == "Bearer token-1" else None
    )
    outcome = make_client(
        auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=object
    ).write([item("P")])[0]
    assert outcome.ok and outcome.attempts == 1  # the auth retry is not a retry of the write
    assert creds.refreshes == 2
    assert _auth_headers(server) == ["Bearer token-1", "Bearer token-2"]


def test_a_second_401_is_not_resent_but_stays_retryable(server, make_client, fake_time):
    creds = CountingCredentials(fake_time.time)
    server.on_request = lambda request, n: httpx.Response(401)
    outcome = make_client(
        auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=object
    ).write([item("P")])[0]
    # The credentials need an operator: no resend now, but a replay after the fix succeeds.
    assert outcome.error.http_status == 401 and outcome.error.retryable and not outcome.error.transient
    assert creds.refreshes == 2 and len(server.log) == 2
    assert "token-" not in str(outcome.error) and "token-" not in repr(outcome.error.to_dict())


def test_refresh_failures_become_auth_errors(server, make_client, fake_time):
    creds = CountingCredentials(fake_time.time, fail=google.auth.exceptions.TransportError("metadata down"))
    outcome = make_client(
        auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=object
    ).write([item("P")])[0]
    assert outcome.error.code == errors.AUTH_ERROR and outcome.error.retryable and outcome.error.transient
    creds.fail = google.auth.exceptions.RefreshError("invalid_grant")
    outcome = make_client(
        auth=AuthConfig(kind="google"), google_credentials=creds, google_request_factory=object
    ).write([item("P")])[0]
    # Revoked credentials: not resent at once, but retryable for a replay once an operator fixed them.
    assert outcome.error.code == errors.AUTH_ERROR and outcome.error.retryable and not outcome.error.transient
    assert server.log == []


def test_concurrent_requests_share_one_refresh(fake_time):
    creds = CountingCredentials(fake_time.time)
    auth = RefreshingTokenAuth(GoogleCredentialsSource(creds, lambda: object()), clock=fake_time.time)
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(auth.current_token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert creds.refreshes == 1 and auth.fetch_count == 1
    assert len({id(t) for t in tokens}) == 1


def test_token_never_shows_in_repr():
    token = AccessToken(headers={"authorization": "Bearer s3cret"}, expires_at=1.0)
    assert "s3cret" not in repr(token)
    config = FhirStoreConfig(
        base_url=BASE,
        auth=AuthConfig(kind="oauth2", token_url="https://idp/token", client_id="cid", client_secret="s3cret"),
    )
    assert "s3cret" not in repr(config)


def _token_endpoint(log, lifetime=3600, status=200, body=None):
    def handler(request):
        log.append(request)
        if body is not None or status != 200:
            return httpx.Response(status, json=body)
        return httpx.Response(
            200, json={"access_token": f"oauth-{len(log)}", "token_type": "Bearer", "expires_in": lifetime}
        )

    return handler


def _routing(token_handler, fhir_handler):
    def route(request):
        if request.url.host == "idp.test":
            return token_handler(request)
        return fhir_handler(request)

    return httpx.MockTransport(route)


def test_oauth2_client_credentials_post(server, make_client, fake_time):
    token_log = []
    auth = AuthConfig(
        kind="oauth2", token_url="https://idp.test/token", client_id="k2f", client_secret="sec", scope="system/*.write"
    )
    client = make_client(auth=auth, transport=_routing(_token_endpoint(token_log), server))
    client.write([item("P1")])
    client.write([item("P2")])
    assert len(token_log) == 1
    form = parse_qs(token_log[0].content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["system/*.write"],
        "client_id": ["k2f"],
        "client_secret": ["sec"],
    }
    assert _auth_headers(server) == ["Bearer oauth-1", "Bearer oauth-1"]
    fake_time.now += 3600  # expired: the next request fetches a new token first
    client.write([item("P3")])
    assert len(token_log) == 2 and _auth_headers(server)[-1] == "Bearer oauth-2"


def test_oauth2_client_credentials_basic(server, make_client):
    token_log = []
    auth = AuthConfig(
        kind="oauth2", token_url="https://idp.test/token", client_id="k2f app", client_secret="s:c", client_auth="basic"
    )
    make_client(auth=auth, transport=_routing(_token_endpoint(token_log), server)).write([item("P1")])
    header = token_log[0].headers["authorization"]
    assert base64.b64decode(header.split()[1]).decode() == "k2f%20app:s%3Ac"
    assert "client_secret" not in token_log[0].content.decode()


@pytest.mark.parametrize(("status", "transient"), [(401, False), (400, False), (503, True)])
def test_oauth2_token_endpoint_failures(server, make_client, status, transient):
    handler = _token_endpoint([], status=status, body={"error": "invalid_client", "error_description": "no"})
    auth = AuthConfig(kind="oauth2", token_url="https://idp.test/token", client_id="a", client_secret="b")
    client = make_client(auth=auth, transport=_routing(handler, server), retry=RetryPolicy(max_attempts=1))
    err = client.write([item("P1")])[0].error
    # Every token error is retryable (a rotated secret is fixed, then replayed); only 5xx is resent at once.
    assert (err.code, err.retryable, err.transient, err.http_status) == (errors.AUTH_ERROR, True, transient, status)
    assert "invalid_client" in err.detail and err.endpoint == "https://idp.test/token"
    assert server.log == []


def test_static_bearer_and_basic(server, make_client):
    make_client(auth=AuthConfig(kind="bearer", token="static-tok")).write([item("P1")])
    make_client(auth=AuthConfig(kind="basic", username="u", password="p")).write([item("P2")])
    assert server.log[0].headers["authorization"] == "Bearer static-tok"
    assert server.log[1].headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_no_auth_sends_no_authorization(server, make_client):
    make_client().write([item("P1")])
    assert "authorization" not in server.log[0].headers


def test_auth_config_validation_and_secret_parsing():
    with pytest.raises(ValueError, match="token"):
        AuthConfig(kind="bearer")
    with pytest.raises(ValueError, match="client_secret"):
        AuthConfig(kind="oauth2", token_url="https://x", client_id="c")
    with pytest.raises(ValueError):
        AuthConfig(kind="kerberos")
    parsed = AuthConfig.from_secret(
        "oauth2",
        {
            "token_url": "https://x/t",
            "client_id": "c",
            "client_secret": "s",
            "scope": "system/*.*",
            "client_auth": "basic",
            "ignored": 1,
        },
    )
    assert (parsed.token_url, parsed.client_id, parsed.scope, parsed.client_auth) == (
        "https://x/t",
        "c",
        "system/*.*",
        "basic",
    )


def test_build_auth_kinds():
    assert build_auth(FhirStoreConfig(base_url=BASE)) is None
    with pytest.raises(ValueError, match="httpx client"):
        build_auth(
            FhirStoreConfig(
                base_url=BASE, auth=AuthConfig(kind="oauth2", token_url="https://x", client_id="c", client_secret="s")
            )
        )


def test_a_config_from_flags_names_the_secret_and_the_worker_resolves_it():
    name = "projects/p/secrets/fhir-auth/versions/3"
    flags = {"fhir_base_url": BASE, "fhir_auth": "oauth2", "fhir_auth_secret_resource_name": name}
    config = FhirStoreConfig.from_flags(flags)
    assert config.auth.unresolved and config.auth.client_secret is None and config.auth.secret_resource_name == name
    payload = {"token_url": "https://idp/t", "client_id": "c", "client_secret": "s3cret", "token": "not-oauth2"}
    reads = []
    resolved = config.resolve_secret(lambda n: reads.append(n) or json.dumps(payload).encode())
    assert reads == [name] and not resolved.auth.unresolved
    assert (resolved.auth.client_secret, resolved.auth.token) == ("s3cret", None)  # only this kind's fields
    assert resolved.resolve_secret(lambda n: 1 / 0) is resolved  # nothing left to read
    with pytest.raises(ValueError, match="client_secret"):
        config.resolve_secret(lambda n: b'{"token_url": "https://idp/t", "client_id": "c"}')
    with pytest.raises(ValueError, match="not JSON"):
        config.resolve_secret(lambda n: b"s3cret")
    # Given the secret's payload (the Airflow checks do), the config carries the credentials as before.
    assert FhirStoreConfig.from_flags(flags, payload).auth.client_secret == "s3cret"
