"""The batch engine's I/O: items read as a stream, per-item state and results kept under ``output_path``, and
the asyncio driver that runs :class:`~airflow_provider_alta._core.batch_plan.BatchPlan` inside the worker."""
