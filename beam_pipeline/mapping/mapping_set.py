"""A set of feeds: the mapping files and terminology files of a folder (or a gs:// prefix), compiled once per
worker, and what the pipeline asks of it: which mapping a message is, and the order resources are written.

A folder holds `<feed>/<message type>.yaml` mapping files and `terminology/*.json` FHIR resources. Adding a
feed is adding files: every `*.yaml` under the folder is a mapping.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from beam_pipeline.mapping.feed import CompiledMapping, MappingError, SourceFile, compile_mapping
from beam_pipeline.mapping.terminology import Terminology, TerminologyError, TerminologyFile
from beam_pipeline.mapping.yaml_source import YamlError, line_of
from beam_pipeline.mapping.yaml_source import load as load_yaml
from beam_pipeline.shipped import shipped_path

# The mappings the pipeline ships: the repository's mappings/ folder (beam_pipeline/shipped.py finds it).
SHIPPED_FOLDER = shipped_path("mappings")
TERMINOLOGY_FOLDER = "terminology"
MAPPING_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class MappingSources:
    """The texts of a mapping set: what a job carries (small, picklable), compiled on each worker."""

    mappings: tuple[SourceFile, ...]
    terminology: tuple[SourceFile, ...]
    origin: str = ""
    # Computed once: workers look their compiled set up by it for every message.
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for item in (*self.mappings, *self.terminology):
            digest.update(item.name.encode() + b"\x00" + item.text.encode() + b"\x00")
        object.__setattr__(self, "digest", digest.hexdigest())


def _split(origin: str, files: Iterable[tuple[str, str]]) -> MappingSources:
    """Files by their path inside the set; messages name them with the set's location in front."""
    mappings, terminology = [], []
    for name, text in sorted(files):
        shown = f"{origin.rstrip('/')}/{name}" if origin else name
        if name.startswith(TERMINOLOGY_FOLDER + "/") and name.endswith(".json"):
            terminology.append(SourceFile(shown, text))
        elif name.endswith(MAPPING_SUFFIXES):
            mappings.append(SourceFile(shown, text))
    return MappingSources(tuple(mappings), tuple(terminology), origin)


def read_folder(folder: str | Path) -> MappingSources:
    """Mapping and terminology files of a local folder, or of a `gs://bucket/prefix`."""
    location = str(folder)
    if location.startswith("gs://"):
        return _read_gcs(location)
    root = Path(location)
    if not root.is_dir():
        raise MappingError(location, 1, "not a folder; --mappings takes a folder or a gs://bucket/prefix")
    files = [
        (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
        for path in root.rglob("*")
        if path.is_file() and (path.suffix in MAPPING_SUFFIXES or path.suffix == ".json")
    ]
    return _split(location, files)


def _read_gcs(url: str) -> MappingSources:
    from google.cloud import storage

    bucket_name, _, prefix = url.removeprefix("gs://").partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = storage.Client()
    files = [
        (blob.name[len(prefix) :], blob.download_as_text(encoding="utf-8"))
        for blob in client.list_blobs(bucket_name, prefix=prefix)
        if blob.name.endswith((*MAPPING_SUFFIXES, ".json"))
    ]
    if not files:
        raise MappingError(url, 1, "no mapping files under this prefix; upload the set (make composer-plan)")
    return _split(url, files)


@lru_cache(maxsize=1)
def shipped() -> MappingSources:
    return read_folder(SHIPPED_FOLDER)


@dataclass(frozen=True)
class MappingSet:
    mappings: tuple[CompiledMapping, ...]
    by_type: dict[str, CompiledMapping] = field(repr=False)
    default: CompiledMapping | None
    terminology: Terminology = field(repr=False)
    # resourceType -> tier: a resource is written after the tiers of what it refers to.
    write_order: dict[str, int] = field(repr=False)

    def recognise(self, kind: str | None) -> CompiledMapping | None:
        """The mapping of a message whose type is `kind` (None: it names none)."""
        if kind is None:
            return self.default
        return self.by_type.get(kind)


def _terminology(sources: MappingSources) -> Terminology:
    files = []
    for item in sources.terminology:
        try:
            resource = json.loads(item.text)
        except json.JSONDecodeError as exc:
            raise MappingError(item.name, exc.lineno, f"not valid JSON: {exc.msg}; fix the JSON there") from None
        if not isinstance(resource, dict):
            raise MappingError(item.name, 1, "a terminology file is one FHIR resource (a JSON object)")
        files.append(TerminologyFile(item.name, resource))
    try:
        return Terminology.from_files(files)
    except TerminologyError as exc:
        name, _, message = str(exc).partition(": ")
        text = next((item.text for item in sources.terminology if item.name == name), "")
        raise MappingError(name, _json_line(text, exc.path), message) from None


def _json_line(text: str, path: tuple[object, ...]) -> int:
    """The line of a place in a JSON file (JSON is YAML, whose reader keeps lines); 1 when unknown."""
    try:
        _, lines = load_yaml(text)
    except YamlError:
        return 1
    return line_of(lines, path)


def write_order(mappings: Iterable[CompiledMapping]) -> dict[str, int]:
    """Tiers from the declared references: a type nothing is referred from is 0; a type is written one tier
    after the deepest type it refers to (Patient 0, Encounter 1, Condition 2, ...)."""
    refers: dict[str, set[str]] = {}
    for mapping in mappings:
        for resource in mapping.resources:
            refers.setdefault(resource.resource_type, set()).update(resource.references)
    tiers: dict[str, int] = {}

    def tier(rtype: str, seen: frozenset[str]) -> int:
        if rtype in tiers:
            return tiers[rtype]
        if rtype in seen:
            raise ValueError(f"resources refer to each other in a cycle through {rtype}")
        deps = [tier(d, seen | {rtype}) for d in refers.get(rtype, ()) if d in refers]
        tiers[rtype] = 1 + max(deps) if deps else 0
        return tiers[rtype]

    for rtype in sorted(refers):
        tier(rtype, frozenset())
    return tiers


def compile_set(sources: MappingSources, *, check_elements: bool = True) -> MappingSet:
    """Every mapping of the set, checked and compiled; MappingError (file, line, fix) on the first problem."""
    terminology = _terminology(sources)
    texts = {item.name: item.text for item in sources.terminology}
    mappings = tuple(compile_mapping(s, terminology, texts, check_elements=check_elements) for s in sources.mappings)
    if not mappings:
        raise MappingError(sources.origin or "mappings", 1, "no mapping files (*.yaml) in this set")
    by_type: dict[str, CompiledMapping] = {}
    default = None
    for mapping in mappings:
        for kind in mapping.types:
            if kind in by_type:
                raise MappingError(
                    mapping.file,
                    mapping.lines.get("types", 1),
                    f"type '{kind}' is also recognised by {by_type[kind].file}; each type has one mapping",
                )
            by_type[kind] = mapping
        if mapping.default:
            if default is not None:
                raise MappingError(
                    mapping.file,
                    mapping.lines.get("default", 1),
                    f"default: true is also set in {default.file}; only one default",
                )
            default = mapping
    ids = [m.id for m in mappings]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        second = mappings[ids.index(duplicate, ids.index(duplicate) + 1)]
        raise MappingError(
            second.file, second.lines.get("id", 1), f"id '{duplicate}' is used twice; give each mapping its own"
        )
    try:
        order = write_order(mappings)
    except ValueError as exc:
        raise MappingError(sources.origin or "mappings", 1, f"{exc}; a reference must point one way") from None
    return MappingSet(mappings, by_type, default, terminology, order)


_COMPILED: dict[str, MappingSet] = {}


def compiled(sources: MappingSources | None = None) -> MappingSet:
    """The compiled set, once per worker process (keyed by the sources' digest). The job's launch has
    checked the elements already; a worker compiles without that check (it needs the FHIR models)."""
    key = sources.digest if sources is not None else ""
    found = _COMPILED.get(key)
    if found is not None:
        return found
    sources = sources or shipped()
    found = _COMPILED.get(sources.digest) or compile_set(sources, check_elements=False)
    _COMPILED[key] = _COMPILED[sources.digest] = found
    return found
