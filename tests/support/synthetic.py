"""Kept for bench/bench_mapping.py, which imports synthetic_rows from here: the rows live in dev/synthetic.py."""

from dev.synthetic import synthetic_rows as synthetic_rows
