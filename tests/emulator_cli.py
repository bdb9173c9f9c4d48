"""Run ``alta-emulator`` as a user does, in its own process, and read what it prints."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

COMMAND = [sys.executable, "-m", "airflow_provider_alta.testing.emulator", "--port", "0"]


class Emulator:
    """One ``alta-emulator`` process; ``lines`` is what it printed so far."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        self.lines: list[str] = []
        while not any(line.startswith("  export ") for line in self.lines):
            line = self.process.stdout.readline()
            assert line, f"the emulator exited: {self.lines}"
            self.lines.append(line.rstrip("\n"))

    @property
    def export(self) -> str:
        return next(line.strip() for line in self.lines if line.startswith("  export "))

    def stop(self) -> str:
        self.process.terminate()
        rest, _ = self.process.communicate(timeout=10)
        return "\n".join(self.lines) + "\n" + rest

    @property
    def connection(self) -> tuple[str, str]:
        """The pasted line as a shell reads it: (variable, value)."""
        name, value = shlex.split(self.export.removeprefix("export "))[0].split("=", 1)
        return name, value

    @property
    def url(self) -> str:
        return str(json.loads(self.connection[1])["host"])
