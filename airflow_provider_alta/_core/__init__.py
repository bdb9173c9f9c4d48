"""The Airflow-free core: the API's protocol, the polling schedule and the wait's state machine, rate
limits, retries, argument checks, what JSON XCom and Alta can carry, the end of a run (the finish plan).
Nothing here imports Airflow."""
