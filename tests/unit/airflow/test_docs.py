"""docs/airflow.md lists every Variable the DAGs read, with its default."""

from __future__ import annotations

from k2f_airflow.config import settings_table

from tests.unit.airflow.conftest import ROOT


def test_every_variable_is_documented_with_its_default():
    text = (ROOT / "docs" / "airflow.md").read_text()
    for name, default, _ in settings_table():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        assert (f"`{default}`" if default else "(empty)") in row, name
