"""The package Dataflow workers install (the launcher passes --setup_file for DataflowRunner)."""

from pathlib import Path

from setuptools import find_packages, setup

# The files the pipeline carries beside its code (beam_pipeline/shipped.py finds them): installed as
# package data under beam_pipeline. Kept in step with beam_pipeline.shipped.SHIPPED_PACKAGES.
SHIPPED = {"beam_pipeline.shipped_mappings": "mappings", "beam_pipeline.shipped_fhir": "include/fhir"}

requirements = [
    line.strip()
    for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="kafka-to-fhir-pipeline",
    version="0.1.0",
    packages=[*find_packages(include=["beam_pipeline", "beam_pipeline.*"]), *SHIPPED],
    package_dir=SHIPPED,
    package_data={
        "beam_pipeline": ["**/*.json"],
        "beam_pipeline.shipped_mappings": ["**/*.yaml", "**/*.yml", "**/*.json"],
        "beam_pipeline.shipped_fhir": ["*.tgz", "*.json", "README.md"],
    },
    install_requires=requirements,
)
