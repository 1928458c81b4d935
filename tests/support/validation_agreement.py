"""Agreement of beam_pipeline/validation with the reference validator: HAPI's $validate on the local server
(US Core 6.1.0 loaded), per profile our mappings write, over what they write and variants of it.

    python tests/support/validation_agreement.py [--per-profile N] [--population-limit N] [--offline]

The resources: the goldens, every mapping's samples, synthetic rows (dev/synthetic.py) and the committed
Synthea population (tests/data/synthea-10), unbroken; per profile, every broken variant of them
(tests/support/validation_variants.py, one per kind of break and element) and the edits that may stay
valid. Every resource HAPI reports an error (or fatal) for must get an error from ours too: those it does
not are false accepts, listed with HAPI's messages. Errors only ours reports are false rejections, listed
with our keys. HAPI is called sequentially, once per resource; answers are kept in --cache so a rerun asks
again only for what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from beam_pipeline.validation import validate  # noqa: E402
from tests.support.validation_corpus import by_profile, digest, mapped_profiles  # noqa: E402
from tests.support.validation_variants import profile_variants, sample  # noqa: E402

_HAPI_ERRORS = frozenset({"error", "fatal"})
UNBROKEN, BROKEN, EDITED = "unbroken", "broken", "edited"


def corpus(
    per_profile: int | None = None, population_limit: int | None = None
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(profile, group, label, resource): per profile every unbroken resource, its broken variants (at most
    `per_profile`, a seeded selection keeping every kind) and its edits."""
    resources = by_profile(population_limit)
    missing = [p for p in mapped_profiles() if not resources.get(p)]
    if missing:
        raise SystemExit(f"no resource of these mapped profiles in the corpus: {missing}")
    out = []
    for profile in sorted(resources):
        found = resources[profile]
        out.extend((profile, UNBROKEN, UNBROKEN, r) for r in found)
        broken = sample(profile_variants(profile, found), per_profile)
        out.extend((profile, BROKEN, v.label, v.resource) for v in broken)
        out.extend((profile, EDITED, v.label, v.resource) for v in profile_variants(profile, found, broken=False))
    return out


def hapi_validate(base: str, profile: str, resource: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"{base}/{resource['resourceType']}/$validate?profile={urllib.parse.quote(profile, safe='')}"
    request = urllib.request.Request(  # noqa: S310  (the local server's URL)
        url, data=json.dumps(resource).encode(), headers={"Content-Type": "application/fhir+json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            outcome = json.load(response)
    except urllib.error.HTTPError as error:  # 412/422/400 carry the OperationOutcome too
        outcome = json.load(error)
    return [
        {
            "severity": i.get("severity"),
            "expression": (i.get("expression") or [""])[0],
            "text": i.get("diagnostics", ""),
        }
        for i in outcome.get("issue", [])
    ]


def main() -> int:  # noqa: C901, PLR0915
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-profile", type=int, default=None, help="at most this many broken variants a profile")
    parser.add_argument("--population-limit", type=int, default=None, help="at most this many population resources")
    parser.add_argument("--cache", default="/tmp/k2f-validation-agreement.json", help="HAPI's answers, kept")
    parser.add_argument("--base", default=os.environ.get("FHIR_BASE_URL", "http://127.0.0.1:8080/fhir"))
    parser.add_argument("--offline", action="store_true", help="use only cached answers, call nothing")
    args = parser.parse_args()

    cache_path = Path(args.cache)
    cache: dict[str, list[dict[str, Any]]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    false_accepts, false_rejects, lenient = [], [], []
    calls = 0
    for profile, group, label, resource in corpus(args.per_profile, args.population_limit):
        key = digest(profile, resource)
        if key not in cache:
            if args.offline:
                continue
            try:
                cache[key] = hapi_validate(args.base, profile, resource)
            except (urllib.error.URLError, OSError) as error:
                cache_path.write_text(json.dumps(cache))
                print(f"{args.base} did not answer ({error}); start the local stack's HAPI or use --offline")
                return 2
            calls += 1
            if calls % 500 == 0:
                cache_path.write_text(json.dumps(cache))
                print(f"{calls} calls", flush=True)
        theirs = [i for i in cache[key] if i["severity"] in _HAPI_ERRORS]
        ours = validate(resource, profile).errors
        name = profile.rsplit("/", 1)[-1]
        row = counts[name]
        row["resources"] += 1
        row[group] += 1
        if theirs and ours:
            row["both reject"] += 1
        elif theirs:
            row["false accepts"] += 1
            false_accepts.append((name, label, [f"{i['expression']}: {i['text']}" for i in theirs]))
        elif ours:
            row["false rejects"] += 1
            false_rejects.append((name, label, sorted({f"{i.path} {i.key}" for i in ours})))
        else:
            row["both accept"] += 1
        if group == BROKEN and not theirs:
            lenient.append((name, label, [f"{i.path} {i.key}" for i in ours]))
    cache_path.write_text(json.dumps(cache))

    columns = (
        "resources", UNBROKEN, BROKEN, EDITED, "both reject", "both accept", "false accepts", "false rejects"
    )  # fmt: skip
    print(f"{'profile':<48}" + "".join(f"{c:>14}" for c in columns))
    for name in sorted(counts):
        print(f"{name:<48}" + "".join(f"{counts[name][c]:>14}" for c in columns))
    total = {c: sum(row[c] for row in counts.values()) for c in columns}
    print(f"{'total':<48}" + "".join(f"{total[c]:>14}" for c in columns))
    broken = [row[BROKEN] for row in counts.values()]
    least, most = min(broken, default=0), max(broken, default=0)
    print(f"\n{len(counts)} profiles; broken variants a profile: min {least}, max {most}")
    print(f"{calls} calls to {args.base}/$validate this run")
    titled = (
        ("False accepts (HAPI errs, ours does not)", false_accepts),
        ("False rejects (ours errs, HAPI does not)", false_rejects),
        ("Broken variants HAPI accepts", lenient),
    )
    for title, rows in titled:
        print(f"\n{title}: {len(rows)}")
        for name, label, detail in rows:
            print(f"  {name} {label}")
            for line in detail[:4]:
                print(f"      {line[:200]}")
    return 1 if false_accepts else 0


if __name__ == "__main__":
    sys.exit(main())
