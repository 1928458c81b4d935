"""Airflow hooks, operators and sensors that launch, watch, replay into and drain the kafka-to-fhir job.

DAG files in dags/ only wire these together; every setting comes from Airflow Variables named in
`k2f_airflow.config`, read when a task runs, never when a DAG file is parsed.
"""
