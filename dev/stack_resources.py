"""The local stack's processes and disk, for benchmarks: which service each process belongs to, the CPU each
service used, pinning the store to CPUs of its own, and room for what a benchmark writes. The stack starts
each service in its own process group (setsid) and writes the group's id to .stack/run/<service>.pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

# HAPI's H2 file only grows (about 0.3 MB a validated Patient on this machine): a benchmark run on a nearly
# full disk filled it, and Kafka, Airflow and HAPI then all failed at once.
BENCH_FREE_DISK_GB = 15


def service_processes(env: dict[str, str]) -> dict[int, tuple[str, int]]:
    """pid -> (service, CPU ticks used so far) for every process of a local service."""
    pid_files = {f.stem: f.read_text().strip() for f in (Path(env["K2F_STATE_DIR"]) / "run").glob("*.pid")}
    groups = {int(group): name for name, group in pid_files.items() if group}
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state ppid pgrp ... utime (12th) stime (13th).
        name = groups.get(int(fields[2]))
        if name:
            out[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))
    return out


def service_cpu_seconds(env: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by each local service's processes."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, ticks in service_processes(env).values():
        out[name] = out.get(name, 0.0) + ticks / tick
    return out


def pin_store(env: dict[str, str], store_cpus: set[int] | None, store: str = "hapi") -> None:
    """Give the `store` service `store_cpus` and every other service (and this process) the other CPUs,
    thread by thread (new threads and processes inherit it); None gives everything every CPU again."""
    every = set(range(os.cpu_count() or 1))
    rest = every - store_cpus if store_cpus else every
    targets = {
        pid: (store_cpus if store_cpus and name == store else rest) for pid, (name, _) in service_processes(env).items()
    }
    targets[os.getpid()] = rest
    for pid, cpus in targets.items():
        for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def store_pinned(env: dict[str, str], store_cpus: set[int] | None) -> Iterator[None]:
    """The store on CPUs of its own while the block runs (nothing changes for None). On Dataflow the store
    is another machine's: pinned, the pipeline's own processes (Prism, the SDK workers, Kafka) no longer
    take the CPU the store's ceiling was measured with."""
    if not store_cpus:
        yield
        return
    if not store_cpus < set(range(os.cpu_count() or 1)):
        raise ValueError(f"--store-cpus must leave at least one of the {os.cpu_count()} CPUs to the rest")
    pin_store(env, store_cpus)
    try:
        yield
    finally:
        pin_store(env, None)


STORE_CPUS_HELP = (
    "CPUs (e.g. 1) for HAPI alone while measuring, the rest for everything else: the store on its own machine, "
    "as in production (default: every process shares every CPU)"
)


def cpu_set(text: str | None) -> set[int] | None:
    """`--store-cpus`' value ("1" or "2,3") as a set, None when not given."""
    return {int(part) for part in text.split(",")} if text else None


def require_disk(env: dict[str, str], free_gb: float = BENCH_FREE_DISK_GB) -> None:
    """Exit with the fix when the stack's disk has less than `free_gb` free (a benchmark writes tens of GB)."""
    state = Path(env["K2F_STATE_DIR"])
    free = shutil.disk_usage(state).free / 1e9
    if free < free_gb:
        hapi = sum(f.stat().st_size for f in (state / "data" / "hapi").glob("*") if f.is_file()) / 1e9
        sys.exit(
            f"{free:.1f} GB free under {state} (HAPI's database: {hapi:.1f} GB), less than the {free_gb} GB a "
            "benchmark may write: `make down`, remove .stack/data/hapi (HAPI starts empty), `make up`"
        )
