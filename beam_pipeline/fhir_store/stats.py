"""What a FHIR store client did, counted across its threads (for logs, metrics and the benchmark)."""

from __future__ import annotations

import threading


class ClientStats:
    """Counters of what the client did, shared by its threads (for logs, metrics and the benchmark)."""

    _FIELDS = (
        "requests",
        "bundles",
        "retries",
        "splits",
        "entries_ok",
        "entries_failed",
        "lookups",
        "unread_creates",
        "unread_creates_found",
        "superseded",
        "unchanged",
        "conflicts",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self._FIELDS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
