"""Hooks: each owns one external system (GCS, Kafka, the job service or Dataflow) and its client."""
