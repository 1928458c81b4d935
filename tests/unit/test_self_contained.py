"""A clone in any folder runs: no tracked file reaches outside the repository, and what the stack needs
from outside (the US Core package) is carried inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A parent-directory hop from the repository root or from a file in it towards a sibling folder, and the
# workspace layout this project was built in. Either means a fresh clone elsewhere would not find the file.
_OUTSIDE = re.compile(r"\.\./shared|\bshared/(fhir|seed)\b|/work/|(K2F_ROOT|ROOT)[}\"']*/\.\.(/|\b)")


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_reaches_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    offenders = []
    for path in _tracked_files():
        if path == this or path.suffix in {".tgz", ".png"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, "these lines reach outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_is_for() -> None:
    # The workspace's sibling folder, spelled in pieces so this file does not itself contain the path.
    sibling = "/".join(("..", "shared"))
    for line in (
        f'US_CORE_PACKAGE="$K2F_ROOT/{sibling}/fhir/x.tgz"',
        "path = ROOT / '..' / 'shared' / 'fhir'",
        '"${K2F_ROOT}/../other/file"',
        "see /work/shared/DESIGN.md",
    ):
        assert _OUTSIDE.search(line.replace("'..' / 'shared'", sibling)), line
    assert not _OUTSIDE.search('US_CORE_PACKAGE="$K2F_ROOT/include/fhir/hl7.fhir.us.core-6.1.0.tgz"')


def test_the_us_core_package_default_is_inside_the_repository() -> None:
    out = subprocess.run(
        ["bash", "-c", 'unset US_CORE_PACKAGE; source dev/env.sh && echo "$US_CORE_PACKAGE"'],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    package = Path(out).resolve()
    assert package.is_relative_to(ROOT), package
    assert package.is_file() and package.stat().st_size > 1_000_000
    assert (package.parent / "README.md").read_text().count("CC0-1.0") >= 1
