"""Operators: each composes hooks into one task of the launch, health, replay or drain DAG."""
