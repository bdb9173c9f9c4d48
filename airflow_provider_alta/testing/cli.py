"""``alta-emulator``: the command line, its ``--config`` file and the banner it prints on start."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from airflow_provider_alta.testing.app import AltaEmulator
from airflow_provider_alta.testing.workflows import DEFAULT_API_KEY, WorkflowConfig


def load_workflows(path: str | None) -> dict[str, WorkflowConfig] | None:
    """Read ``{"workflows": {"<api key>": {...settings...}}}`` from a JSON file."""
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    return {key: WorkflowConfig.from_dict(value) for key, value in data["workflows"].items()}


def banner(
    url: str, workflows: dict[str, WorkflowConfig], config: str | None = None, concurrency_limit: int | None = None
) -> str:
    """What the emulator prints on start: its URL, the key it accepts and a connection line to paste.

    Keys read from a ``--config`` file are the user's own: they are counted, never echoed (a log of the
    emulator must not hold them); the line to paste then shows where the key goes.
    """
    lines = [f"Alta emulator listening on {url} (endpoints: {url}/_emulator/)"]
    if config is None:
        first = next(iter(workflows), DEFAULT_API_KEY)
        for api_key, workflow in workflows.items():
            lines.append(f"Accepted API key: {api_key} (workflow {workflow.name} {workflow.version})")
    else:
        first = "<an API key of " + Path(config).name + ">"
        names = sorted({f"{w.name} {w.version}" for w in workflows.values()})
        lines.append(f"Accepted API keys: the {len(workflows)} of {config} (workflows {', '.join(names)})")
    if concurrency_limit is not None:
        lines.append(f"At most {concurrency_limit} runs in flight per key (then 429 CONCURRENCY_LIMIT_EXCEEDED)")
    conn = json.dumps({"conn_type": "alta", "host": url, "password": first})
    lines += ["Point Airflow's alta_default connection at it:", f"  export AIRFLOW_CONN_ALTA_DEFAULT='{conn}'"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alta-emulator",
        description="A local emulator of the Alta workflow API: a real HTTP server on 127.0.0.1.",
        epilog=f"Without --config it accepts the API key {DEFAULT_API_KEY!r} (a todayNews workflow) and "
        "prints a ready-to-paste AIRFLOW_CONN_ALTA_DEFAULT line. Each request is logged as one line "
        "(method, path, status; never a key or a body).",
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--config", help='JSON file: {"workflows": {"<api key>": {settings}}}')
    parser.add_argument("--port-file", help="write the bound port to this file once listening")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (with --tls-key)")
    parser.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    parser.add_argument("--quiet", action="store_true", help="do not log the requests served")
    parser.add_argument(
        "--concurrency-limit",
        type=int,
        metavar="N",
        help="at most N runs in flight per key (a workflow's own concurrency_limit wins); default: no limit",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of failures and run durations (default 0)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """``alta-emulator``: serve the emulator until interrupted."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.concurrency_limit is not None and args.concurrency_limit < 1:
        parser.error("--concurrency-limit must be 1 or more")
    ssl_context = None
    if args.tls_cert:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    scheme = "https" if ssl_context else "http"

    def log(line: str) -> None:
        print(line, flush=True)

    async def serve() -> None:
        emulator = AltaEmulator(
            load_workflows(args.config),
            seed=args.seed,
            concurrency_limit=args.concurrency_limit,
            log=None if args.quiet else log,
        )
        serving = await emulator.start(port=args.port, ssl_context=ssl_context)
        if args.port_file:
            Path(args.port_file).write_text(str(serving.port))
        url = f"{scheme}://127.0.0.1:{serving.port}"
        print(banner(url, emulator.workflows, args.config, args.concurrency_limit), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await serving.stop()

    asyncio.run(serve())
    sys.exit(0)
