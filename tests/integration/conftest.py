"""Helpers for tests that run real peers: loopback ports, child processes that are always
stopped, waiting with a deadline, and the Debian packages the peers come from."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENSURE_PEERS = ROOT / "scripts" / "ensure-peers.sh"
LOOPBACK = "127.0.0.1"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port free on loopback right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.25) -> T:
    """Call ``probe`` until it returns something other than None (an exception counts as
    None, except an AssertionError: the probe saw it can never succeed); fail with ``what``
    and the last exception when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            found = probe()
        except AssertionError:
            raise
        except Exception as exc:
            found, last = None, exc
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {last!r}")
        time.sleep(every)


class Process:
    """A child process with its output in a log file; :meth:`stop` ends it, and only it."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The end of its log, for failure messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace)


class Processes:
    """Starts child processes and stops all of them at teardown, last started first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Process] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, argv, self.logs / f"{name}.log", env or clean_env())
        self.started.append(process)
        return process

    def report(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()


def clean_env() -> dict[str, str]:
    """This environment without ``STANCH_*`` (a developer's settings must not leak in) and
    without proxies (every peer is on loopback)."""
    drop = ("http_proxy", "https_proxy", "all_proxy")
    return {
        k: v for k, v in os.environ.items() if not k.startswith("STANCH_") and k.lower() not in drop
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Child processes of one test; all are stopped when it ends, pass or fail."""
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Processes(logs)
    try:
        yield started
    finally:
        started.stop_all()


def peer_binaries(*names: str) -> dict[str, str]:
    """Paths of ``names``, installing their Debian packages first when one is missing (see
    scripts/ensure-peers.sh); skips the test, saying why, when they cannot be installed."""

    def find() -> dict[str, str]:
        return {n: p for n in names if (p := shutil.which(n) or _usr_bin(n)) is not None}

    found = find()
    if len(found) < len(names):
        done = subprocess.run(
            ["sh", str(ENSURE_PEERS)], capture_output=True, text=True, timeout=600, check=False
        )
        found = find()
        if len(found) < len(names):
            missing = ", ".join(sorted(set(names) - set(found)))
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            pytest.skip(f"{missing} not installed and {ENSURE_PEERS.name} could not: {why[0]}")
    return found


def _usr_bin(name: str) -> str | None:
    path = Path("/usr/bin") / name
    return str(path) if os.access(path, os.X_OK) else None
