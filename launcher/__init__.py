"""Starting and watching jobs from outside the workers: the local stack's runner and the flags that aim a
pipeline at it, and the job states and job service client that Airflow and the tests watch jobs with.

Not part of the package Dataflow workers install (setup.py ships beam_pipeline only); Composer receives it
beside beam_pipeline in dags/ (deploy/composer_plan.py).
"""
