"""What the write step's Reshuffle costs per element: the coder Beam used before the types were declared
(FastPrimitivesCoder, which pickles a dataclass) against the registered MappedMessageCoder; and the same
for a RawMessage (the read's and the write step's output) against RawMessageCoder.

    python bench/bench_coders.py [--rounds 20000] [--runs 5]

A Patient and a vital-signs Observation shaped like the shipped mappings' output, with Kafka headers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apache_beam import coders  # noqa: E402

from beam_pipeline.contracts.outcome import MappedResource  # noqa: E402
from beam_pipeline.raw_message import RawMessage  # noqa: E402
from beam_pipeline.transforms.coders import MappedMessageCoder, RawMessageCoder  # noqa: E402
from beam_pipeline.transforms.elements import MappedMessage  # noqa: E402

SYSTEM = "urn:k2f-bench:coders"


def sample() -> MappedMessage:
    raw = RawMessage(
        "patients",
        3,
        1_234_567,
        1_795_000_000_000,
        b"p-1",
        b'{"Id": "p-1", "FIRST": "Ann", "LAST": "Lee"}' * 4,
        (("k2f-attempt", b"1"), ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")),
    )
    patient = {
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "identifier": [{"system": SYSTEM, "value": "p-1"}],
        "name": [{"family": "Lee", "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1970-01-01",
        "address": [{"line": ["1 Main St"], "city": "Boston", "state": "MA", "postalCode": "02110"}],
    }
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": SYSTEM, "value": "o-1"}],
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient?identifier={SYSTEM}|p-1"},
        "effectiveDateTime": "2026-11-18T10:00:00Z",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    return MappedMessage(raw, (MappedResource(patient, (SYSTEM, "p-1")), MappedResource(observation, (SYSTEM, "o-1"))))


def per_call_us(call: Callable[[], object], rounds: int, runs: int) -> float:
    """The best of `runs` runs: a shared machine only ever adds time."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def measure(coder: coders.Coder, value: object, rounds: int, runs: int) -> tuple[float, float, int]:
    """(µs per encode, µs per decode, bytes)."""
    encoded = coder.encode(value)
    return (
        per_call_us(lambda: coder.encode(value), rounds, runs),
        per_call_us(lambda: coder.decode(encoded), rounds, runs),
        len(encoded),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    mapped = sample()
    print(f"{'element':<15}{'coder':<22}{'encode µs':>10}{'decode µs':>10}{'bytes':>8}  deterministic")
    for element, value, coder in (
        ("MappedMessage", mapped, coders.FastPrimitivesCoder()),
        ("MappedMessage", mapped, coders.PickleCoder()),
        ("MappedMessage", mapped, MappedMessageCoder()),
        ("RawMessage", mapped.message, coders.FastPrimitivesCoder()),
        ("RawMessage", mapped.message, coders.PickleCoder()),
        ("RawMessage", mapped.message, RawMessageCoder()),
    ):
        assert coder.decode(coder.encode(value)) == value
        encode_us, decode_us, size = measure(coder, value, args.rounds, args.runs)
        name = type(coder).__name__
        print(f"{element:<15}{name:<22}{encode_us:>10.1f}{decode_us:>10.1f}{size:>8}  {coder.is_deterministic()}")


if __name__ == "__main__":
    main()
