"""Produce-to-readable latency on the local stack: publish at a steady rate, read when HAPI stored each
Patient (its meta.lastUpdated, same machine clock), and the percentiles. Used by bench/bench_pipeline.py
and the end-to-end latency phase."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dev.local_stack import stored_resources


def produce(producer: Any, topic: str, rows: Sequence[bytes], per_second: float | None) -> dict[str, float]:  # noqa: ANN401
    """Publish rows (as fast as the producer goes, or at `per_second`); source Id -> produce time."""
    produced: dict[str, float] = {}
    start = time.time()
    for n, row in enumerate(rows):
        if per_second:
            time.sleep(max(0.0, start + n / per_second - time.time()))
        produced[json.loads(row)["Id"]] = time.time()
        producer.produce(topic, row)
        producer.poll(0)
    producer.flush(60)
    return produced


def stored_at(env: Mapping[str, str], system: str) -> dict[str, float]:
    """Source Id -> epoch seconds HAPI stored it, paging through every Patient of the system."""
    out: dict[str, float] = {}
    for resource in stored_resources(env, system):
        [ident] = [i["value"] for i in resource["identifier"] if i.get("system") == system]
        out[ident] = datetime.fromisoformat(resource["meta"]["lastUpdated"]).timestamp()
    return out


def latencies(produced: Mapping[str, float], stored: Mapping[str, float]) -> list[float]:
    """Seconds from produce to stored for each produced Id, sorted; KeyError names an Id not stored."""
    return sorted(stored[i] - produced[i] for i in produced)


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]
