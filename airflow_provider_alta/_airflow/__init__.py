"""The Airflow plumbing: the differences between releases (``version_compat``), the uses of Airflow's internals
(``internals``), where a task keeps its run id, which errors fail fast, applying the finish plan (on a worker or in
the triggerer), the operator's rooms (the reattach protocol, the defer setup, the duration history), metrics and
lineage."""
