"""Triggers: waits that run on the triggerer, so a sensor waiting minutes holds no worker slot."""
