"""The package Dataflow workers install (the launcher passes --setup_file for DataflowRunner)."""

from pathlib import Path

from setuptools import find_packages, setup

requirements = [
    line.strip()
    for line in (Path(__file__).parent / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="kafka-to-fhir-pipeline",
    version="0.1.0",
    packages=find_packages(include=["beam_pipeline", "beam_pipeline.*"]),
    package_data={"beam_pipeline": ["**/*.json"]},
    install_requires=requirements,
)
