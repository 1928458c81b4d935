"""The conformance resources the validator compiles from: the US Core 6.1.0 package the repository carries
and the R4 base extract beside it (include/fhir/README.md says where each comes from).

Read once per process, on first use. Only what validation reads is kept: StructureDefinitions (with
snapshots), ValueSets and CodeSystems, by canonical URL.
"""

from __future__ import annotations

import functools
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beam_pipeline.shipped import shipped_path

US_CORE_PACKAGE = "hl7.fhir.us.core-6.1.0.tgz"
R4_BASE_EXTRACT = "hl7.fhir.r4.base-extract.json"
_KINDS = ("StructureDefinition", "ValueSet", "CodeSystem")


@dataclass
class Definitions:
    """Conformance resources by canonical URL (without version)."""

    structures: dict[str, dict[str, Any]] = field(default_factory=dict)
    value_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The URLs the implementation guide itself defines (the base extract's are only there to lean on).
    guide_structures: list[str] = field(default_factory=list)

    def add(self, resource: dict[str, Any], *, guide: bool) -> None:
        kind, url = resource.get("resourceType"), resource.get("url")
        if not url:
            return
        if kind == "StructureDefinition" and "snapshot" in resource:
            self.structures[url] = resource
            if guide:
                self.guide_structures.append(url)
        elif kind == "ValueSet":
            self.value_sets[url] = resource
        elif kind == "CodeSystem":
            self.code_systems[url] = resource

    def datatype(self, name: str) -> dict[str, Any] | None:
        """The base definition of a complex datatype (`Coding`), or None."""
        return self.structures.get(f"http://hl7.org/fhir/StructureDefinition/{name}")


def read_package(path: Path) -> list[dict[str, Any]]:
    """The conformance resources at the top of an NPM-style FHIR package (`package/*.json`)."""
    out = []
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            name = member.name
            if not (
                member.isfile() and name.startswith("package/") and name.count("/") == 1 and name.endswith(".json")
            ):
                continue
            if not name.split("/", 1)[1].startswith(_KINDS):
                continue
            source = archive.extractfile(member)
            if source is not None:
                out.append(json.load(source))
    return out


def read_extract(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return [resource for kind in _KINDS for resource in data.get(kind, [])]


def load(packages: Sequence[Path]) -> Definitions:
    """The R4 base extract with implementation guide packages over it, later ones winning a shared URL.
    Any NPM-style FHIR package whose profiles carry snapshots is read the same way."""
    loaded = Definitions()
    for resource in read_extract(shipped_path("include/fhir", R4_BASE_EXTRACT)):
        loaded.add(resource, guide=False)
    for package in packages:
        for resource in read_package(package):
            loaded.add(resource, guide=True)
    return loaded


@functools.cache
def definitions() -> Definitions:
    """The shipped US Core package over the R4 base."""
    return load([shipped_path("include/fhir", US_CORE_PACKAGE)])
