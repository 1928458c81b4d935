"""What the pipeline and the Airflow side share: the error record and replay headers, the Kafka secret, the
bucket layout and the job's defaults.

Nothing here imports Beam (tests/unit/airflow/test_without_beam.py holds that), so the DAGs read these
strings without loading the pipeline's runtime. docs/contracts.md names each contract's module.
"""
