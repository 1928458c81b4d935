"""What the integration tests share beyond the local stack's helpers (dev/local_stack.py and its
neighbours, which the benchmarks use too): the loops under load, the ADT and mapping fixtures."""
