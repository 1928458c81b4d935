"""What the shipped mapping files declare, for tests that generate records: read from the compiled files,
so a test follows the mapping rather than keeping a copy of its field lists."""

from __future__ import annotations

from beam_pipeline.mapping.mapping_set import compiled


def text_fields(kind: str) -> tuple[str, ...]:
    """The fields a message type's mapping checks as text (its `validate: - fields:` list)."""
    mapping = compiled().by_type[kind]
    return tuple(name for step in mapping.steps if step.kind == "fields" for name in step.names)


def message_types() -> frozenset[str]:
    """Every type value the shipped mappings recognise."""
    return frozenset(compiled().by_type)
