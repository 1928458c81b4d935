"""Kafka on the pipeline side: KafkaIO's consumer settings and the expansion service that runs it."""
