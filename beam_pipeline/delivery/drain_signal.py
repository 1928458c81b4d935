"""The local drain's signal: an object in the archive bucket that tells a running job to stop taking messages.

Beam's portable job API (Prism) has no drain. The drain DAG writes the marker; the job's read step stops
passing messages on once it sees it, and what it passed on settles and is committed; then the DAG cancels
the job. Messages read after the marker are not settled, so their offsets are not committed: the next job
reads them. Only a marker written after the job was built counts, so a relaunch is not stopped by the
marker of the drain before it. On Dataflow the DAG uses Dataflow's own drain and writes no marker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from beam_pipeline.contracts.bucket_layout import bucket_name, drain_marker_name

log = logging.getLogger(__name__)

# How often a worker looks for the marker: the drain's reaction time, against one GCS read per interval.
POLL_SECONDS = 2.0
LOOK_TIMEOUT_SECONDS = 3.0


def requested_at_ms(body: bytes) -> int | None:
    """The marker's request time, or None when it is not a marker this version wrote."""
    try:
        value = json.loads(body).get("requested_at_ms")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def marker_body(now_ms: int) -> bytes:
    return json.dumps({"requested_at_ms": now_ms}).encode()


class DrainSignal:
    """Whether a drain was asked for since `built_at_ms`; looks at most once per POLL_SECONDS."""

    def __init__(
        self,
        bucket: str,
        job_name: str,
        built_at_ms: int,
        client_factory: Callable[[], Any],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._bucket = bucket_name(bucket)
        self._name = drain_marker_name(job_name)
        self._built_at_ms = built_at_ms
        self._client_factory = client_factory
        self._poll_seconds = poll_seconds
        self._blob: Any = None
        self._looked_at = float("-inf")
        self._requested = False

    def requested(self) -> bool:
        if self._requested:
            return True  # a drain is never taken back within one job
        now = time.monotonic()
        if now - self._looked_at < self._poll_seconds:
            return False
        self._looked_at = now
        from google.api_core.exceptions import NotFound

        try:
            if self._blob is None:
                self._blob = self._client_factory().bucket(self._bucket).blob(self._name)
            # One quick look, never the client's minutes of retries: the read step waits on this call.
            body = self._blob.download_as_bytes(timeout=LOOK_TIMEOUT_SECONDS, retry=None)
        except NotFound:
            return False
        except Exception as exc:  # noqa: BLE001  (GCS unreachable: keep going, look again)
            log.warning("drain signal not read (%s); looking again in %.0f s", type(exc).__name__, self._poll_seconds)
            return False
        at = requested_at_ms(body)
        self._requested = at is not None and at >= self._built_at_ms
        return self._requested
