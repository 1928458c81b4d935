"""A conditional reference and the guard search find the same resource, whatever the identifier holds.

The mapping writes `Type?identifier=system|value` into a resource (the store resolves it when it writes
the entry); the client's conditional URL names the resource it writes, and its guard search POSTs the
identifiers as a form body. All three must reach the server as one token, or a reference could miss the
resource the guard found (or the other way round).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fhir_fakes import parse_token
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.fhir_store import bundles
from beam_pipeline.mapping.runtime import f_reference

SYSTEMS = ["urn:k2f-test:mrn", "https://ehr.example/ids", "urn:k2f-test:odd/sys$tem,x", "urn:oid:1.2 3"]
VALUES = ["plain-1", "a|b", "a,b", "a$b", "with space", "a\\b", "Zoë-名字", "a\\|b,c$d e", "a&b=c", "a+b", "50%off"]


def _tokens(system: str, value: str) -> dict[str, str]:
    """The token as the server reads each request: the reference, the conditional URL, the guard search."""
    [reference] = f_reference(["Patient"], [system], [value])
    query = urlsplit(reference["reference"]).query
    conditional = bundles.identifier_query(system, value)
    search = httpx.Request("POST", "http://fhir.example/Patient/_search", data={"identifier": token(system, value)})
    return {
        name: parse_qs(text, keep_blank_values=True)["identifier"][0]
        for name, text in (("reference", query), ("conditional", conditional), ("search", search.content.decode()))
    }


def token(system: str, value: str) -> str:
    return bundles.token_search_value(system, value)  # what FhirStoreClient's guard search sends


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("system", SYSTEMS)
def test_a_reference_the_conditional_url_and_the_guard_search_carry_one_token(system, value):
    tokens = _tokens(system, value)
    assert set(tokens.values()) == {token(system, value)}, tokens
    assert parse_token(token(system, value)) == [system, value]


@given(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from("|,$\\ "), min_size=1, max_size=30),
)
def test_any_identifier_reaches_the_server_as_one_token(system, value):
    assert set(_tokens(system, value).values()) == {token(system, value)}


def test_the_reference_keeps_readable_characters_and_the_url_encodes_them():
    # Different spellings of one token: the reference stays readable, the conditional URL is all-encoded.
    [reference] = f_reference(["Patient"], ["urn:k2f-test:mrn"], ["a|b c"])
    assert reference["reference"] == "Patient?identifier=urn:k2f-test:mrn|a\\|b%20c"
    assert bundles.identifier_query("urn:k2f-test:mrn", "a|b c") == "identifier=urn%3Ak2f-test%3Amrn%7Ca%5C%7Cb%20c"
