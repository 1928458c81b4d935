"""The validator's results over a fixed corpus (tests/support/validation_snapshot.py) are those pinned in
snapshot.json: a speed-up or a refactoring must not change an issue, its path, key, severity or order.
A deliberate change of results rewrites the file (`python tests/support/validation_snapshot.py --write`)."""

from __future__ import annotations

import json

from tests.support.validation_snapshot import PINNED, corpus, results, summary


def test_the_corpus_gives_the_pinned_results():
    pinned = json.loads(PINNED.read_text())
    now = summary()
    changed = sorted(name for name in pinned.keys() | now.keys() if pinned.get(name) != now.get(name))
    assert changed == [], f"results changed for {changed}: compare --dump of this version and the last"


def test_results_do_not_depend_on_what_was_validated_before():
    # The generated Coding checks remember passing Codings: a second pass must say what the first said.
    first = [(name, profile, resource, results(name, profile, resource)) for name, profile, resource in corpus()[:12]]
    for name, profile, resource, before in reversed(first):
        assert results(name, profile, resource) == before, name
