"""What the validator says about a fixed corpus, pinned: every golden and sample resource of the shipped
mappings and one synthetic resource per profile, each unbroken, in every broken variant and
every edit (validation_variants.py), validated against the profiles it claims.

The pinned file holds one digest per corpus resource over its variants' issues and must-support findings
(paths, keys, severities, details, in order) and not-checked list (paths and keys), so a change to the validator that
changes any result, or its order, fails tests/unit/validation/test_snapshot.py.

    python tests/support/validation_snapshot.py --write      # after a deliberate change of results
    python tests/support/validation_snapshot.py --dump FILE   # every result in full, to diff two versions
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / "tests" / "unit" / "validation" / "snapshot.json"
_GENERATED_PATIENTS = 30


def corpus() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, profile, resource): goldens, samples, and the first synthetic resource of each profile."""
    from tests.support.validation_corpus import generated_resources, golden_resources, sample_resources

    out = [(f"golden[{i}]", p, r) for i, (p, r) in enumerate(golden_resources())]
    out += [(f"sample[{i}]", p, r) for i, (p, r) in enumerate(sample_resources())]
    seen: set[str] = set()
    for i, (profile, resource) in enumerate(generated_resources(_GENERATED_PATIENTS)):
        if profile not in seen:
            seen.add(profile)
            out.append((f"generated[{i}]", profile, resource))
    return out


def results(name: str, profile: str, resource: dict[str, Any]) -> list[list[Any]]:
    """[label, issues, must-support, not-checked] of the resource and each broken variant of it."""
    from beam_pipeline.validation import validate
    from tests.support.validation_variants import broken_variants, edited_variants

    changed = broken_variants(resource, profile) + edited_variants(resource, profile)
    out = []
    for label, broken in [("unbroken", resource), *((v.label, v.resource) for v in changed)]:
        result = validate(broken, profile)
        out.append(
            [
                label,
                [[i.path, i.key, i.severity, i.detail] for i in result.issues],
                [[i.path, i.key, i.severity, i.detail] for i in result.must_support],
                # Without the reason: which of several reasons for one (path, key) is kept varies between
                # processes (the compiler walks a set of ids).
                [[n.path, n.key] for n in result.not_checked],
            ]
        )
    return out


def digest(entries: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


def summary() -> dict[str, dict[str, Any]]:
    """Per corpus resource: its profile, variant count, issue count and digest."""
    out = {}
    for name, profile, resource in corpus():
        entries = results(name, profile, resource)
        out[f"{name} {profile.rsplit('/', 1)[-1]}"] = {
            "variants": len(entries),
            "issues": sum(len(e[1]) for e in entries),
            "digest": digest(entries),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"rewrite {PINNED.relative_to(ROOT)}")
    parser.add_argument("--dump", type=Path, help="write every result in full to this file")
    args = parser.parse_args()
    if args.dump:
        full = {f"{n} {p}": results(n, p, r) for n, p, r in corpus()}
        args.dump.write_text(json.dumps(full, indent=0))
    if args.write:
        PINNED.write_text(json.dumps(summary(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
