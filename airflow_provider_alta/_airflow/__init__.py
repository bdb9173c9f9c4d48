"""The Airflow plumbing: the differences between releases, the uses of Airflow's internals, finishing a run
(on a worker or in the triggerer), metrics and lineage."""
