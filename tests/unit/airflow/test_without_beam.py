"""The Airflow side reads the pipeline's contracts without loading Beam.

Workers parse DAGs and run replay and health tasks; Beam is large and none of them needs it to read an
error record, a bucket prefix or the Kafka secret. Run in a fresh interpreter, so modules other tests
imported do not count.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Imports every plugin module, then runs the code paths that read contracts (replay, the error check).
SCRIPT = """
import pkgutil, sys
from datetime import UTC, datetime

sys.path[:0] = [{plugins!r}, {root!r}]
import k2f_airflow

for module in pkgutil.walk_packages(k2f_airflow.__path__, "k2f_airflow."):
    __import__(module.name)

from k2f_airflow import health
from k2f_airflow.config import K2fConfig
from k2f_airflow.replay import ErrorReplayer


class EmptyBucket:
    def list_blobs(self, prefix=""):
        return []


class Storage:
    def bucket(self, name):
        return EmptyBucket()


ErrorReplayer(EmptyBucket(), producer=None, max_attempts=3).run()
health.new_errors(K2fConfig(topics="t", error_bucket="b"), datetime.now(UTC), storage=Storage())
print(sorted(m for m in sys.modules if m.split(".")[0] == "apache_beam")[:3])
"""


def test_the_plugins_and_the_contracts_they_read_do_not_import_beam():
    script = SCRIPT.format(plugins=str(ROOT / "plugins"), root=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"Beam was imported: {out.stdout.strip()}"
