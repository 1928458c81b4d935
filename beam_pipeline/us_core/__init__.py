"""Raw healthcare JSON -> US Core 6.1.0 resources: pure Python, no Beam, no network.

from beam_pipeline.us_core import TransformConfig, transform
outcome = transform(raw_bytes, topic="patients", config=TransformConfig())
# Ok(resources=(MappedResource(resource, identifier),)) | Filtered(reason) | Error(stage, code, detail)
"""

from beam_pipeline.contracts.outcome import Error, Filtered, MappedResource, Ok, Outcome, Parsed
from beam_pipeline.us_core.config import TransformConfig
from beam_pipeline.us_core.stages import map_parsed, mapping_set, parse_and_validate, transform

__all__ = [
    "Error",
    "Filtered",
    "MappedResource",
    "Ok",
    "Outcome",
    "Parsed",
    "TransformConfig",
    "map_parsed",
    "mapping_set",
    "parse_and_validate",
    "transform",
]
