"""The names of the steps' tagged outputs, one definition each: the step that tags an output and the
graph that reads it name it with the same constant."""

# ParseAndValidate
VALID = "valid"
FILTERED = "filtered"
INVALID = "invalid"
# MapToFhir
MAPPED = "mapped"
# WriteToFhirStore
WRITTEN = "written"
# MapToFhir and WriteToFhirStore: their error records, which DeadLetter writes.
FAILED = "failed"
