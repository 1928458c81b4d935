"""Airflow hooks, operators and sensors that launch, watch, replay into and drain the kafka-to-fhir job.

DAG files in dags/ only wire these together; every setting comes from the Airflow Variable named in
`k2f_airflow.config`, rendered into a task's `config` field when it runs (operators/common.py), never read
when a DAG file is parsed.
"""
