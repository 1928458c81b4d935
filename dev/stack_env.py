"""The local stack's settings as Python sees them: what dev/env.sh, the one place that defines them,
exports. The tests, the benchmarks and the loops under tests/support read them through here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stack_env() -> dict[str, str]:
    """Every variable dev/env.sh exports, with the caller's overrides applied, as the scripts see them."""
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT / 'dev' / 'env.sh'} && env -0"],
        check=True,
        capture_output=True,
        env={**os.environ, "K2F_ROOT": str(ROOT)},
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
