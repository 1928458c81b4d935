"""kafka-to-fhir: the streaming job Dataflow workers run (setup.py ships this package)."""
