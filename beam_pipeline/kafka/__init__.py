"""Kafka connection: the secret that describes it and the consumer settings built from it."""
