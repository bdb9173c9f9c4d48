"""The Airflow plumbing: the differences between releases (``version_compat``), the uses of Airflow's internals
(``internals``), where a task keeps its run id, which errors fail fast, finishing a run (on a worker or in the
triggerer), metrics and lineage."""
