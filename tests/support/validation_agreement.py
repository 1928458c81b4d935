"""Agreement of beam_pipeline/validation with the reference validator: HAPI's $validate on the local server
(US Core 6.1.0 loaded), over our mappings' output and broken variants of it, per profile.

    python tests/support/validation_agreement.py [--per-profile 25] [--per-other-profile 8] [--offline]

Every resource HAPI reports an error (or fatal) for must get an error from ours too: those it does not are
false accepts, listed with HAPI's messages. Errors only ours reports are false rejections, listed with our
keys. HAPI is called sequentially, once per resource; answers are kept in --cache so a rerun asks again
only for what changed.
"""

from __future__ import annotations

import argparse
import hashlib
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
from tests.support.validation_corpus import generated_resources, golden_resources, sample_resources  # noqa: E402
from tests.support.validation_variants import variants  # noqa: E402

_HAPI_ERRORS = frozenset({"error", "fatal"})


def corpus(per_profile: int, per_other_profile: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(profile, label, resource): per profile up to two unbroken resources and `per_profile` variants
    (`per_other_profile` for the profiles only synthetic rows reach), taken in turn from each resource."""
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    mapped = golden_resources() + sample_resources()
    sampled = {profile for profile, _ in mapped}
    for profile, resource in mapped + generated_resources(10):
        digest = hashlib.sha256(json.dumps([profile, resource], sort_keys=True).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            by_profile[profile].append(resource)
    out = []
    for profile, resources in sorted(by_profile.items()):
        wanted = per_profile if profile in sampled else per_other_profile
        out.extend((profile, "unbroken", r) for r in resources[:2])
        pools = [variants(r, limit=wanted, seed=i) for i, r in enumerate(resources[:5])]
        taken = 0
        while taken < wanted and any(pools):
            for pool in pools:
                if pool and taken < wanted:
                    label, broken = pool.pop(0)
                    out.append((profile, label, broken))
                    taken += 1
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-profile", type=int, default=25, help="broken variants per profile we map samples to")
    parser.add_argument("--per-other-profile", type=int, default=8, help="for profiles only synthetic rows reach")
    parser.add_argument("--cache", default="/tmp/k2f-validation-agreement.json", help="HAPI's answers, kept")
    parser.add_argument("--base", default=os.environ.get("FHIR_BASE_URL", "http://127.0.0.1:8080/fhir"))
    parser.add_argument("--offline", action="store_true", help="use only cached answers, call nothing")
    args = parser.parse_args()

    cache_path = Path(args.cache)
    cache: dict[str, list[dict[str, Any]]] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    false_accepts, false_rejects = [], []
    calls = 0
    for profile, label, resource in corpus(args.per_profile, args.per_other_profile):
        key = hashlib.sha256(json.dumps([profile, resource], sort_keys=True).encode()).hexdigest()
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
        theirs = [i for i in cache[key] if i["severity"] in _HAPI_ERRORS]
        ours = validate(resource, profile).errors
        name = profile.rsplit("/", 1)[-1]
        counts[name]["resources"] += 1
        counts[name]["broken" if label != "unbroken" else "unbroken"] += 1
        if theirs and ours:
            counts[name]["both reject"] += 1
        elif theirs:
            counts[name]["false accepts"] += 1
            false_accepts.append((name, label, [f"{i['expression']}: {i['text']}" for i in theirs]))
        elif ours:
            counts[name]["false rejects"] += 1
            false_rejects.append((name, label, sorted({f"{i.path} {i.key}" for i in ours})))
        else:
            counts[name]["both accept"] += 1
    cache_path.write_text(json.dumps(cache))

    columns = ("resources", "broken", "both reject", "both accept", "false accepts", "false rejects")
    print(f"{'profile':<40}" + "".join(f"{c:>15}" for c in columns))
    for name in sorted(counts):
        print(f"{name:<40}" + "".join(f"{counts[name][c]:>15}" for c in columns))
    total = {c: sum(row[c] for row in counts.values()) for c in columns}
    print(f"{'total':<40}" + "".join(f"{total[c]:>15}" for c in columns))
    print(f"\n{calls} calls to {args.base}/$validate this run")
    for title, rows in (("False accepts (HAPI errs, ours does not)", false_accepts), ("False rejects", false_rejects)):
        print(f"\n{title}: {len(rows)}")
        for name, label, detail in rows:
            print(f"  {name} {label}")
            for line in detail[:4]:
                print(f"      {line[:200]}")
    return 1 if false_accepts else 0


if __name__ == "__main__":
    sys.exit(main())
