"""Apache Airflow provider for the Alta AI-workflow API."""

__version__ = "0.1.0"
