"""Rewrite tests/unit/us_core/golden/ from include/sample_messages/ with the current mapping files, and say
which goldens changed beyond their meta.tag (a mapping's content version changes with any edit of what it
writes; anything else that changed deserves a review before it is committed).

    python dev/regenerate_goldens.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beam_pipeline.us_core import TransformConfig, transform  # noqa: E402

SAMPLES = ROOT / "include" / "sample_messages"
GOLDEN = ROOT / "tests" / "unit" / "us_core" / "golden"


def _untagged(outcome: dict) -> dict:
    for resource in outcome.get("resources", []):
        resource.get("meta", {}).pop("tag", None)
    return outcome


def main() -> int:
    changed = []
    for sample in sorted(SAMPLES.glob("*.json")):
        golden = GOLDEN / f"{sample.stem}.expected.json"
        outcome = transform(sample.read_bytes().strip(), config=TransformConfig()).to_json()
        text = json.dumps(outcome, indent=1, ensure_ascii=False) + "\n"
        old = golden.read_text() if golden.exists() else None
        if old == text:
            continue
        if old is None or _untagged(json.loads(old)) != _untagged(json.loads(text)):
            changed.append(golden.name)
        golden.write_text(text)
    print("changed beyond meta.tag (review these):", ", ".join(changed) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
