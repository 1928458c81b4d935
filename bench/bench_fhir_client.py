"""Benchmark: the FHIR store client against what the original sample does, on the local HAPI.

Two ways to write the same synthetic US Core Patients:
- baseline: one POST per resource, each over a new requests.Session (new connection), as the original
  sample did per message (it also refreshed a Google token each time; locally there is no token, so the real
  baseline is slower still);
- client: beam_pipeline.fhir_store in its default mode (upsert: conditional update on the identifier),
  batch bundles of BUNDLE entries with INFLIGHT bundles in flight.

Both run twice in one invocation: straight to HAPI, and through dev/fault_proxy.py adding
--latency-ms (default 25 ms) to every request, the round trip to a cloud FHIR store such as the Healthcare
API. The baseline is slow by design, so it runs on --baseline-patients (default 1,000) of the
--patients (default 10,000); the table says so. Every phase writes under its own identifier system, and
the counts are checked afterwards, so runs are independent and nothing is counted that did not land.

    python bench/bench_fhir_client.py [--patients 10000] [--baseline-patients 1000]
        [--direct 200x4] [--proxy 200x4] [--latency-ms 25] [--fhir-base-url URL] [--sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import requests  # noqa: E402

from beam_pipeline.fhir_store import FhirStoreClient, FhirStoreConfig, RetryPolicy, WriteItem  # noqa: E402
from beam_pipeline.fhir_store.healthcare_api import FHIR_JSON  # noqa: E402
from dev.fault_proxy import FaultProxy  # noqa: E402
from dev.fhir_samples import identifier_of, unique_system, us_core_patient  # noqa: E402
from dev.local_stack import validation_on  # noqa: E402


@dataclass
class Row:
    path: str
    method: str
    patients: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.patients / self.seconds


def parse_shape(text: str) -> tuple[int, int]:
    bundle, _, inflight = text.lower().partition("x")
    return int(bundle), int(inflight or 1)


def patients(purpose: str, n: int) -> tuple[str, list[dict]]:
    system = unique_system(f"bench-{purpose}")
    return system, [us_core_patient(system, i) for i in range(n)]


def count(base: str, system: str) -> int:
    with FhirStoreClient(FhirStoreConfig(base_url=base)) as client:
        return client.count("Patient", {"identifier": f"{system}|"})


def run_baseline(base: str, resources: list[dict]) -> float:
    """One POST per resource, a new session (connection) for each, as the original sample did.

    requests.Session, as in the original (google-auth's AuthorizedSession is one): creating it costs
    microseconds, whereas an httpx.Client builds an SSL context (~20 ms) and would flatter the client.
    """
    started = time.perf_counter()
    for resource in resources:
        with requests.Session() as session:
            response = session.post(
                f"{base}/Patient", data=json.dumps(resource), headers={"Content-Type": FHIR_JSON}, timeout=60
            )
            if response.status_code != 201:
                raise SystemExit(f"baseline POST failed with HTTP {response.status_code}: {response.text[:2000]}")
    return time.perf_counter() - started


def run_client(base: str, resources: list[dict], bundle: int, inflight: int, mode: str = "upsert") -> float:
    items = [WriteItem(r, identifier_of(r), key=i) for i, r in enumerate(resources)]
    config = FhirStoreConfig(
        base_url=base,
        write_mode=mode,
        bundle_size=bundle,
        max_bundles_in_flight=inflight,
        retry=RetryPolicy(max_attempts=5, total_timeout=300),
    )
    with FhirStoreClient(config) as client:
        started = time.perf_counter()
        outcomes = client.write(items)
        seconds = time.perf_counter() - started
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} client writes failed; first: {failed[0].error}")
    return seconds


def measure(path: str, slug: str, base: str, args: argparse.Namespace, shape: tuple[int, int]) -> list[Row]:
    bundle, inflight = shape
    rows = []
    system, resources = patients(f"baseline-{slug}", args.baseline_patients)
    seconds = run_baseline(base, resources)
    assert count(base, system) == len(resources)
    rows.append(Row(path, "baseline: 1 POST per resource, new session each", len(resources), seconds))
    print(f"  {path}: baseline {len(resources)} in {seconds:.1f}s", file=sys.stderr)
    system, resources = patients(f"client-{slug}", args.patients)
    seconds = run_client(base, resources, bundle, inflight)
    assert count(base, system) == len(resources)
    rows.append(Row(path, f"client upsert, bundle {bundle}, {inflight} in flight", len(resources), seconds))
    print(f"  {path}: client {len(resources)} in {seconds:.1f}s", file=sys.stderr)
    return rows


def sweep(path: str, base: str, n: int) -> None:
    print(f"\nsweep ({path}, {n} patients per shape): resources/s")
    for bundle in (50, 100, 200, 500):
        rates = []
        for inflight in (1, 2, 4, 8):
            _, resources = patients("sweep", n)
            rates.append(f"{inflight} in flight {n / run_client(base, resources, bundle, inflight):7.0f}")
        print(f"  bundle {bundle:4d}: " + " | ".join(rates), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000, help="Patients written by the client per path.")
    parser.add_argument(
        "--baseline-patients", type=int, default=1_000, help="Patients written by the baseline per path (subset)."
    )
    parser.add_argument("--direct", type=parse_shape, default=(200, 4), help="BUNDLExINFLIGHT straight to HAPI.")
    parser.add_argument("--proxy", type=parse_shape, default=(200, 4), help="BUNDLExINFLIGHT through the proxy.")
    parser.add_argument("--latency-ms", type=float, default=25.0, help="Latency the proxy adds per request.")
    parser.add_argument("--fhir-base-url", default=os.environ.get("FHIR_BASE_URL", "http://127.0.0.1:8080/fhir"))
    parser.add_argument("--warmup", type=int, default=500, help="Patients written first, not measured (JIT).")
    parser.add_argument("--sweep", action="store_true", help="Also time bundle sizes x bundles in flight.")
    args = parser.parse_args()
    args.baseline_patients = min(args.baseline_patients, args.patients)
    base = args.fhir_base_url.rstrip("/")

    with FhirStoreClient(FhirStoreConfig(base_url=base)) as client:
        report = client.check(retry=RetryPolicy(max_attempts=2, total_timeout=10))
    if not report.ok:
        raise SystemExit(f"no usable FHIR server at {base} ({'; '.join(report.problems)}); run `make up` first")
    with httpx.Client(base_url=base, timeout=60) as fhir:
        validating = validation_on(fhir)
    print(f"warming up with {args.warmup} patients ...", file=sys.stderr)
    run_client(base, patients("warmup", args.warmup)[1], 200, 2)
    run_baseline(base, patients("warmup-baseline", 50)[1])

    rows = measure("direct", "direct", base, args, args.direct)
    origin = base.split("/fhir", 1)[0] if "/fhir" in base else base
    suffix = base[len(origin) :]
    with FaultProxy(origin, latency=args.latency_ms / 1000) as proxy:
        proxied = measure(f"proxy +{args.latency_ms:g} ms", "proxy", proxy.url + suffix, args, args.proxy)
        rows += proxied
        if args.sweep:
            sweep("proxy", proxy.url + suffix, 1000)
    if args.sweep:
        sweep("direct", base, 1000)

    print()
    print(
        f"FHIR store client benchmark: {report.software} at {base}, US Core validation "
        f"{'ON' if validating else 'off'}; {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"baseline measured on {args.baseline_patients} patients, client on {args.patients}, per path")
    print()
    print("| path | method | patients | seconds | resources/s | vs baseline |")
    print("|---|---|---:|---:|---:|---:|")
    for i in range(0, len(rows), 2):
        base_row, client_row = rows[i], rows[i + 1]
        for row in (base_row, client_row):
            ratio = row.rate / base_row.rate
            print(f"| {row.path} | {row.method} | {row.patients} | {row.seconds:.1f} | {row.rate:.1f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
