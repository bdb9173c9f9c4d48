"""The wire: the two HTTP clients the hooks send with (``requests`` on a worker, ``aiohttp`` in a triggerer or an
asyncio batch), what their failures mean, and how an answer's body is decoded.

No Airflow and no policy: what to send, whether to send it again and what an answer means are decided in
:mod:`airflow_provider_alta._core`; the hooks drive both. The HTTP clients are imported when a request is made."""
