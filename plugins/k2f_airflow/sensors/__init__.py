"""Sensors: each polls one condition of the running job."""
