"""The mapping engine: feeds as data (mapping files, FHIRPath expressions, ConceptMaps)."""
