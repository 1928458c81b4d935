"""Delivery: when a consumed message's outcome is durable, and committing the offsets past it."""
