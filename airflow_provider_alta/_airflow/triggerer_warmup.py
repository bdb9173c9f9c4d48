"""Have the triggerer ready to end tasks before the first run ends, once per triggerer.

A triggerer's supervisor answers its triggers' requests for what the metadata
database holds (XComs, Variables) through an Execution API it runs in its own
process, and Airflow builds that API the first time such a request comes. The
build took 10-12 s on a busy two-core machine, 2-3 s on a quiet one, and the
supervisor answers no trigger meanwhile: the first run to end in a newly
started triggerer paid it, and every run ending during it waited behind it
(P5 in ``bench/README.md``).

So the first trigger that may end its task in a triggerer process reads one
XCom of its task in the background when it starts, long before its run ends:
the run id its worker pushed before deferring. That is one request per
triggerer process, whatever the number of triggers.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from airflow_provider_alta._airflow.triggerer_finish import TriggererFinish
from airflow_provider_alta._core.finish_plan import XCOM_RUN_ID

#: The triggerer event loops whose supervisor was asked once already.
_READY: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
#: The reads under way (the event loop only keeps weak references to its tasks).
_UNDER_WAY: set[asyncio.Task[None]] = set()


def prepare_supervisor(finish: TriggererFinish, log: Any) -> bool:
    """Start the one read of this triggerer process, unless one was started; ``True`` when this call started it.

    Call it from a trigger running in a triggerer (:func:`airflow_provider_alta._airflow.internals.in_triggerer`). It
    returns at once: the trigger waits for its run meanwhile.
    """
    loop = asyncio.get_running_loop()
    if loop in _READY:
        return False
    _READY.add(loop)
    task = loop.create_task(_read_run_id(finish, log), name="alta-triggerer-warmup")
    _UNDER_WAY.add(task)
    task.add_done_callback(_UNDER_WAY.discard)
    return True


async def _read_run_id(finish: TriggererFinish, log: Any) -> None:
    from airflow_provider_alta._airflow.version_compat.xcom import aget_xcom

    started = time.monotonic()
    try:
        await aget_xcom(
            key=XCOM_RUN_ID,
            dag_id=finish.dag_id,
            run_id=finish.run_id,
            task_id=finish.task_id,
            map_index=finish.map_index,
        )
    except Exception as exc:
        # Nothing is lost: the pushes at the run's end ask the same supervisor, and fall back to resuming the
        # task on a worker if they fail.
        log.warning(
            "The triggerer's supervisor could not be prepared for ending tasks here (%s: %s); the first run to "
            "end may wait while Airflow builds its in-process Execution API",
            type(exc).__name__,
            exc,
        )
        return
    log.info(
        "The triggerer's supervisor is ready to end tasks here: its in-process Execution API answered in %.1f s "
        "(once per triggerer)",
        time.monotonic() - started,
    )
