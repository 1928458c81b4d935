"""Build include/fhir/hl7.fhir.r4.base-extract.json: the part of FHIR R4 (4.0.1) that US Core 6.1.0's
profiles lean on but do not carry, for beam_pipeline/validation.

US Core's snapshots stop where a profile stops constraining (Patient.meta is a Meta, nothing below), and
its required bindings name R4's ValueSets (AdministrativeGender). Both come from HAPI's
hapi-fhir-validation-resources-r4 jar on Maven Central (the version the local HAPI server runs), read as
XML and reduced to what the validator reads: the complex datatypes' snapshot elements (paths,
cardinalities, types, invariants, bindings) and the ValueSets bound from US Core or those datatypes, at any
strength (the reference validator checks a code of every CodeSystem it has, whatever the binding), with
the CodeSystems they include (codes only, no displays). FHIR is CC0.

    python dev/build_r4_base.py            # fetches the jar with mvn when ~/.m2 lacks it
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]
HAPI_VERSION = "8.4.0"  # dev/hapi/pom.xml's hapi.version
ARTIFACT = f"ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4:{HAPI_VERSION}"
JAR = (
    Path.home() / ".m2/repository/ca/uhn/hapi/fhir/hapi-fhir-validation-resources-r4"
    / HAPI_VERSION / f"hapi-fhir-validation-resources-r4-{HAPI_VERSION}.jar"
)  # fmt: skip
UCUM_ARTIFACT = "org.fhir:ucum:1.0.3"  # the UCUM essence HAPI's validator checks unit codes with
UCUM_JAR = Path.home() / ".m2/repository/org/fhir/ucum/1.0.3/ucum-1.0.3.jar"
US_CORE = ROOT / "include/fhir/hl7.fhir.us.core-6.1.0.tgz"
OUT = ROOT / "include/fhir/hl7.fhir.r4.base-extract.json"
NS = "{http://hl7.org/fhir}"
_BOOLEAN = frozenset({"mustSupport", "caseSensitive", "inactive"})


def _jar(path: Path = JAR, artifact: str = ARTIFACT) -> Path:
    if not path.exists():
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:get", f"-Dartifact={artifact}", "-Dtransitive=false"], check=True
        )
    return path


def _ucum() -> dict[str, Any]:
    """UCUM's prefixes and unit atoms (code -> whether a prefix may precede it), from the essence file."""
    with zipfile.ZipFile(_jar(UCUM_JAR, UCUM_ARTIFACT)) as archive:
        root = ElementTree.fromstring(archive.read("ucum-essence.xml"))  # noqa: S314  (the published essence)
    atoms = {node.get("Code"): True for node in root.iter("base-unit")}
    atoms.update({node.get("Code"): node.get("isMetric") == "yes" for node in root.iter("unit")})
    return {
        "source": f"{UCUM_ARTIFACT} (Maven Central) ucum-essence.xml, version {root.get('version')}",
        "prefixes": sorted(node.get("Code") for node in root.iter("prefix")),
        "atoms": dict(sorted(atoms.items())),
    }


def _value(node: ElementTree.Element, name: str) -> str | None:
    child = node.find(NS + name)
    return None if child is None else child.get("value")


def _values(node: ElementTree.Element, name: str) -> list[str]:
    return [child.get("value", "") for child in node.findall(NS + name)]


def _element(node: ElementTree.Element) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.get("id") or _value(node, "path"), "path": _value(node, "path")}
    for name in ("sliceName", "max", "contentReference"):
        if (text := _value(node, name)) is not None:
            out[name] = text
    if (text := _value(node, "min")) is not None:
        out["min"] = int(text)
    if _value(node, "mustSupport") == "true":
        out["mustSupport"] = True
    types = []
    for kind in node.findall(NS + "type"):
        entry: dict[str, Any] = {"code": _value(kind, "code")}
        for name in ("profile", "targetProfile"):
            if found := _values(kind, name):
                entry[name] = found
        types.append(entry)
    if types:
        out["type"] = types
    constraints = []
    for constraint in node.findall(NS + "constraint"):
        entry = {name: _value(constraint, name) for name in ("key", "severity", "expression")}
        constraints.append({k: v for k, v in entry.items() if v is not None})
    if constraints:
        out["constraint"] = constraints
    binding = node.find(NS + "binding")
    if binding is not None and _value(binding, "valueSet"):
        out["binding"] = {"strength": _value(binding, "strength"), "valueSet": _value(binding, "valueSet")}
    slicing = node.find(NS + "slicing")
    if slicing is not None:
        out["slicing"] = {
            "discriminator": [
                {"type": _value(d, "type"), "path": _value(d, "path")} for d in slicing.findall(NS + "discriminator")
            ],
            "rules": _value(slicing, "rules"),
        }
    return out


def _structure_definition(node: ElementTree.Element) -> dict[str, Any]:
    snapshot = node.find(NS + "snapshot")
    assert snapshot is not None
    return {
        "resourceType": "StructureDefinition",
        "url": _value(node, "url"),
        "name": _value(node, "name"),
        "kind": _value(node, "kind"),
        "type": _value(node, "type"),
        "derivation": _value(node, "derivation"),
        "snapshot": {"element": [_element(e) for e in snapshot.findall(NS + "element")]},
    }


def _concepts(node: ElementTree.Element) -> list[dict[str, Any]]:
    out = []
    for concept in node.findall(NS + "concept"):
        entry: dict[str, Any] = {"code": _value(concept, "code")}
        if nested := _concepts(concept):
            entry["concept"] = nested
        out.append(entry)
    return out


def _value_set(node: ElementTree.Element) -> dict[str, Any]:
    compose: dict[str, Any] = {}
    source = node.find(NS + "compose")
    for part in ("include", "exclude"):
        entries = []
        for include in [] if source is None else source.findall(NS + part):
            entry: dict[str, Any] = {}
            if system := _value(include, "system"):
                entry["system"] = system
            if concepts := [{"code": _value(c, "code")} for c in include.findall(NS + "concept")]:
                entry["concept"] = concepts
            if filters := [
                {name: _value(f, name) for name in ("property", "op", "value")} for f in include.findall(NS + "filter")
            ]:
                entry["filter"] = filters
            if value_sets := _values(include, "valueSet"):
                entry["valueSet"] = value_sets
            entries.append(entry)
        if entries:
            compose[part] = entries
    return {"resourceType": "ValueSet", "url": _value(node, "url"), "compose": compose}


def _code_system(node: ElementTree.Element) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "url": _value(node, "url"),
        "content": _value(node, "content"),
        "caseSensitive": _value(node, "caseSensitive") == "true",
        "concept": _concepts(node),
    }


def _resources(archive: zipfile.ZipFile, name: str, kind: str) -> list[ElementTree.Element]:
    tree = ElementTree.fromstring(archive.read(name))  # noqa: S314  (HL7's published file, from Maven Central)
    return [node for node in tree.iter(NS + kind)]


def _us_core() -> list[dict[str, Any]]:
    out = []
    with tarfile.open(US_CORE, "r:gz") as archive:
        for member in archive:
            if member.isfile() and member.name.startswith("package/") and member.name.count("/") == 1:
                source = archive.extractfile(member)
                if source is not None and member.name.endswith(".json"):
                    out.append(json.load(source))
    return out


def _bound(definitions: list[dict[str, Any]]) -> set[str]:
    return {
        element["binding"]["valueSet"].split("|")[0]
        for definition in definitions
        for element in definition.get("snapshot", {}).get("element", [])
        if element.get("binding", {}).get("valueSet")
    }


def build() -> dict[str, Any]:
    base = "org/hl7/fhir/r4/model/"
    with zipfile.ZipFile(_jar()) as archive:
        types = [
            _structure_definition(node)
            for node in _resources(archive, base + "profile/profiles-types.xml", "StructureDefinition")
            if _value(node, "kind") == "complex-type"
        ]
        value_sets: dict[str, dict[str, Any]] = {}
        code_systems: dict[str, dict[str, Any]] = {}
        for name in ("valuesets.xml", "v3-codesystems.xml", "v2-tables.xml"):
            for node in _resources(archive, base + "valueset/" + name, "ValueSet"):
                value_sets.setdefault(_value(node, "url") or "", _value_set(node))
            for node in _resources(archive, base + "valueset/" + name, "CodeSystem"):
                code_systems.setdefault(_value(node, "url") or "", _code_system(node))
    us_core = _us_core()
    carried = {r["url"] for r in us_core if r.get("resourceType") in ("ValueSet", "CodeSystem")}
    wanted = _bound([r for r in us_core if r.get("resourceType") == "StructureDefinition"] + types)
    # US Core's own ValueSets include R4's (and each other): follow every include to what it names.
    pending = list(wanted | {vs for r in us_core if r.get("resourceType") == "ValueSet" for vs in _included(r)})
    pending += [s for r in us_core if r.get("resourceType") == "ValueSet" for s in _systems(r)]
    chosen_sets: dict[str, dict[str, Any]] = {}
    chosen_systems: dict[str, dict[str, Any]] = {}
    while pending:
        url = pending.pop()
        if url in carried or url in chosen_sets or url in chosen_systems:
            continue
        if url in value_sets:
            chosen_sets[url] = value_sets[url]
            pending += _included(value_sets[url]) + _systems(value_sets[url])
        elif url in code_systems:
            chosen_systems[url] = code_systems[url]
    digest = hashlib.sha256(_jar().read_bytes()).hexdigest()
    return {
        "source": f"{ARTIFACT} (Maven Central), SHA-256 {digest}; FHIR R4 4.0.1, CC0-1.0",
        "built_by": "dev/build_r4_base.py",
        "StructureDefinition": types,
        "ValueSet": [chosen_sets[url] for url in sorted(chosen_sets)],
        "CodeSystem": [chosen_systems[url] for url in sorted(chosen_systems)],
        "ucum": _ucum(),
    }


def _included(value_set: dict[str, Any]) -> list[str]:
    compose = value_set.get("compose", {})
    return [
        vs.split("|")[0]
        for part in ("include", "exclude")
        for i in compose.get(part, [])
        for vs in i.get("valueSet", [])
    ]


def _systems(value_set: dict[str, Any]) -> list[str]:
    # Every system a value set draws on: a whole or filtered include needs the CodeSystem to expand, and a
    # concept list's system still checks codings of that system wherever they appear (as HAPI does).
    compose = value_set.get("compose", {})
    return [i["system"] for part in ("include", "exclude") for i in compose.get(part, []) if "system" in i]


def main() -> int:
    extract = build()
    OUT.write_text(json.dumps(extract, separators=(",", ":"), sort_keys=True) + "\n")
    print(
        f"{OUT.relative_to(ROOT)}: {len(extract['StructureDefinition'])} datatypes, {len(extract['ValueSet'])} "
        f"value sets, {len(extract['CodeSystem'])} code systems, {OUT.stat().st_size // 1024} KB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
