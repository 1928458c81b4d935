"""The pipeline's steps, each a composite PTransform named as a user reads the Dataflow graph."""
