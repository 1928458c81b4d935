"""Full structural validation of a resource with fhir.resources (R4B models match R4 for Patient)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def structural_problems(resource: dict[str, Any]) -> list[str]:
    """Element paths and error kinds fhir.resources reports; its messages can quote values, so they are
    reduced to location and type."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(resource["resourceType"])
        model.model_validate(resource)
    except ValidationError as exc:
        return [".".join(str(p) for p in err["loc"]) + f": {err['type']}" for err in exc.errors()]
    except (KeyError, ValueError) as exc:
        return [f"resourceType: {type(exc).__name__}"]
    return []
