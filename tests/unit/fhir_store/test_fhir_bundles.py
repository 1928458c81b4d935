"""Bundle building, identity rounds and batch-response mapping: pure functions, no HTTP."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from fhir_fakes import SYSTEM, item, patient
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.fhir_store import bundles, errors
from beam_pipeline.fhir_store.bundles import WriteItem


def test_upsert_is_a_conditional_update_on_the_identifier():
    entry = bundles.prepare_entry(item("A-1"), 0, "upsert")
    assert entry.entry["request"] == {"method": "PUT", "url": "Patient?identifier=urn%3Ak2f-test%3Amrn%7CA-1"}
    assert entry.entry["resource"]["identifier"] == [{"system": SYSTEM, "value": "A-1"}]
    assert entry.identity == ("identifier", "Patient", SYSTEM, "A-1")
    # The description used in error details names the interaction, never the identifier.
    assert "A-1" not in entry.interaction


def test_conditional_create_uses_if_none_exist():
    entry = bundles.prepare_entry(item("A-1"), 3, "conditional_create")
    assert entry.position == 3
    assert entry.entry["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn%3Ak2f-test%3Amrn%7CA-1",
    }
    assert entry.identity is not None


def test_create_is_a_plain_post_without_identity():
    entry = bundles.prepare_entry(item("A-1"), 0, "create")
    assert entry.entry["request"] == {"method": "POST", "url": "Patient"}
    assert entry.identity is None


def test_without_identifier_upsert_puts_by_id_or_creates():
    with_id = dict(patient("x"), id="abc-1")
    by_id = bundles.prepare_entry(WriteItem(with_id), 0, "upsert")
    assert by_id.entry["request"] == {"method": "PUT", "url": "Patient/abc-1"}
    assert by_id.identity == ("id", "Patient", "abc-1")
    plain = bundles.prepare_entry(WriteItem(patient("x")), 0, "upsert")
    assert plain.entry["request"] == {"method": "POST", "url": "Patient"}


def test_require_identifier_refuses_items_without_one():
    error = bundles.prepare_entry(WriteItem(patient("x")), 0, "upsert", require_identifier=True)
    assert isinstance(error, errors.FhirStoreError)
    assert (error.code, error.retryable, error.attempts) == (errors.INVALID_ITEM, False, 0)
    # create mode never needs one
    assert isinstance(
        bundles.prepare_entry(WriteItem(patient("x")), 0, "create", require_identifier=True), bundles.PreparedEntry
    )


@pytest.mark.parametrize(
    "bad",
    [
        WriteItem([]),  # type: ignore[arg-type]
        WriteItem({"name": "no type"}),
        WriteItem({"resourceType": "patient/../x"}),
        WriteItem(patient("A-1"), ("", "A-1")),
        WriteItem(patient("A-1"), (SYSTEM, "")),
        WriteItem(patient("A-1"), (SYSTEM,)),  # type: ignore[arg-type]
        # the identifier must be on the resource, or the next conditional write would miss it
        WriteItem(patient("A-1"), (SYSTEM, "B-2")),
    ],
)
def test_unusable_items_are_invalid_without_quoting_values(bad):
    error = bundles.prepare_entry(bad, 0, "upsert")
    assert isinstance(error, errors.FhirStoreError)
    assert error.code == errors.INVALID_ITEM and not error.retryable
    assert "A-1" not in str(error) and "B-2" not in str(error)


def test_token_values_are_escaped_then_percent_encoded():
    assert bundles.token_search_value("urn:s", "a|b,c$d\\e") == "urn:s|a\\|b\\,c\\$d\\\\e"
    query = bundles.identifier_query("urn:s", "a|b&c=d e")
    assert query.startswith("identifier=")
    # nothing that would break the query string survives unencoded
    assert "&" not in query[len("identifier=") :] and " " not in query
    assert unquote(query[len("identifier=") :]) == "urn:s|a\\|b&c=d e"


def test_rounds_put_repeated_identities_in_later_rounds_in_order():
    items = [item("A"), item("B"), item("A", "Second"), item("C"), item("A", "Third"), item("B", "Second")]
    entries = [bundles.prepare_entry(it, i, "upsert") for i, it in enumerate(items)]
    rounds = bundles.plan_rounds(entries)
    assert [[e.position for e in r] for r in rounds] == [[0, 1, 3], [2, 5], [4]]


def test_creates_share_the_first_round():
    entries = [bundles.prepare_entry(item("A"), i, "create") for i in range(5)]
    assert [[e.position for e in r] for r in bundles.plan_rounds(entries)] == [[0, 1, 2, 3, 4]]


@given(st.lists(st.sampled_from("ABCDE"), max_size=40))
def test_rounds_hold_each_identity_once_and_keep_order(values):
    entries = [bundles.prepare_entry(item(v), i, "upsert") for i, v in enumerate(values)]
    rounds = bundles.plan_rounds(entries)
    assert sorted(e.position for r in rounds for e in r) == list(range(len(values)))
    for r in rounds:
        identities = [e.identity for e in r]
        assert len(identities) == len(set(identities))
        assert [e.position for e in r] == sorted(e.position for e in r)
    # the k-th message for an identity is in round k, so per-identity order is message order
    for v in set(values):
        positions = [i for i, x in enumerate(values) if x == v]
        assert [next(k for k, r in enumerate(rounds) if p in {e.position for e in r}) for p in positions] == list(
            range(len(positions))
        )


@given(st.integers(0, 50), st.integers(1, 12))
def test_chunked_covers_everything_in_order(n, size):
    chunks = bundles.chunked(list(range(n)), size)
    assert [x for c in chunks for x in c] == list(range(n))
    assert all(1 <= len(c) <= size for c in chunks)


def test_batch_bundle_shape():
    entries = [bundles.prepare_entry(item(v), i, "upsert") for i, v in enumerate("AB")]
    bundle = json.loads(bundles.batch_bundle_bytes(entries))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "batch"
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT", "PUT"]


def test_read_batch_response_maps_entries_in_order():
    body = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"response": {"status": "201 Created", "location": "Patient/7/_history/1", "etag": 'W/"1"'}},
            {
                "response": {
                    "status": "422 Unprocessable Entity",
                    "outcome": {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "invariant"}],
                    },
                }
            },
            {"response": {"status": "200", "location": "http://h/fhir/Patient/8/_history/4"}},
        ],
    }
    answers = bundles.read_batch_response(body, 3)
    assert [a.status for a in answers] == [201, 422, 200]
    assert answers[0].version_id == "1" and answers[2].version_id == "4"
    assert answers[1].outcome["issue"][0]["code"] == "invariant" and not answers[1].ok


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"resourceType": "OperationOutcome"},
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"response": {"status": "200"}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": []},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "OK"}}]},
        {"resourceType": "Bundle", "type": "batch-response", "entry": [{}]},
    ],
)
def test_unusable_batch_responses_raise(body):
    with pytest.raises(ValueError):
        bundles.read_batch_response(body, 1)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("Patient/1/_history/2", ("Patient", "1", "2")),
        ("Patient/abc", ("Patient", "abc", None)),
        (
            "https://healthcare.googleapis.com/v1/projects/p/locations/l/datasets/d/fhirStores/s/fhir/Patient/"
            "a-b/_history/MTY",
            ("Patient", "a-b", "MTY"),
        ),
        (None, (None, None, None)),
        ("garbage", (None, None, None)),
    ],
)
def test_parse_location(location, expected):
    assert bundles.parse_location(location) == expected


def test_parse_status_and_etag():
    assert bundles.parse_status("201 Created") == 201
    assert bundles.parse_status("200") == 200
    assert bundles.parse_status(204) == 204
    assert bundles.parse_status("Created") is None
    assert bundles.parse_etag('W/"3"') == "3"
    assert bundles.parse_etag('"MTY4"') == "MTY4"
    assert bundles.parse_etag("junk") is None


def test_only_a_guarded_update_answered_with_the_version_it_named_kept_its_version():
    timed = WriteItem(patient("P1"), (SYSTEM, "P1"), source_time_ms=1_000)
    entry = bundles.prepare_entry(timed, 0, "upsert")
    stored = {
        "resourceType": "Patient",
        "id": "7",
        "meta": {"versionId": "3"},
        "identifier": patient("P1")["identifier"],
    }
    update = bundles.guarded_entry(entry, [stored])
    create = bundles.guarded_entry(entry, [])
    assert bundles.read_version(update) == "3" and bundles.read_version(create) is None

    def answer(status: int, version: str) -> bundles.EntryResponse:
        return bundles.EntryResponse(status, location=f"Patient/7/_history/{version}", etag=f'W/"{version}"')

    assert bundles.kept_version(update, answer(200, "3"))
    assert not bundles.kept_version(update, answer(200, "4"))  # a new version: written
    assert not bundles.kept_version(update, answer(409, "3"))  # not a success
    assert not bundles.kept_version(create, answer(201, "3"))
    assert not bundles.kept_version(entry, answer(200, "3"))  # an unguarded upsert names no version
