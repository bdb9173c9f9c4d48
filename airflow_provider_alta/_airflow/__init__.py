"""The Airflow plumbing: the differences between releases, the uses of Airflow's internals, applying the finish
plan (on a worker or in the triggerer), the operator's rooms (the reattach protocol, the defer setup, the duration
history), metrics and lineage."""
