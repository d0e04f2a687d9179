"""The demo shop, live on loopback for real peers to scrape: :class:`LiveShop`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from typing import Any

import httpx
import uvicorn

from stanch.clock import WallClock
from stanch.core.runbook import load_runbook_text
from stanch.demo.scenario import DemoWorld, Scenario
from stanch.demo.shop import CATALOG_SIZE, SHOP_SERVICE

NEVER = 1e9  # seconds after the start: the demo's scripted changes must not happen here
NO_RULES = "version: 1\nrules: []\n"


class LiveShop:
    """The demo shop behind Stanch's middleware, on the wall clock, on ``127.0.0.1:port``.

    One background thread runs an event loop with three tasks: uvicorn serving the shop (and
    its ``/metrics``), the shop's engine stepping once a second (its closed windows are what
    move the ``stanch_*_total`` counters Prometheus scrapes), and shoppers sending about
    ``rps`` checkouts a second, plus some catalogue reads. The runbook is empty: the shop's
    own Stanch must not trip a breaker and hide the errors the test injects.
    """

    def __init__(self, db_url: str, port: int, *, rps: float = 20.0) -> None:
        self.db_url = db_url
        self.port = port
        self.rps = rps
        self.base_url = f"http://127.0.0.1:{port}"
        self._statuses: Counter[tuple[str, int]] = Counter()  # (route, status) -> count
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._world: DemoWorld | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- control, from the test's thread --------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._run, name="live-shop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the shop did not start on {self.base_url}: {self._error!r}")

    def set_config(self, values: dict[str, Any], reason: str) -> None:
        """Change the shop's configuration (on the loop's thread: the engine is not
        thread-safe); the next request sees it."""

        async def change() -> None:
            assert self._world is not None
            self._world.engine.change_config(
                SHOP_SERVICE, time.time(), values, author="integration-test", reason=reason
            )

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(change(), self._loop).result(timeout=5.0)

    def counts(self) -> Counter[tuple[str, int]]:
        """A copy of the answers seen so far, by (route, status)."""
        with self._lock:
            return self._statuses.copy()

    def stop(self, timeout: float = 15.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the shop's thread did not stop")

    # -- the loop's thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        now = time.time()
        scenario = Scenario(
            start=now, deploy_at_s=NEVER, bad_config_at_s=NEVER, unrelated_change_at_s=NEVER
        )
        world = DemoWorld(
            scenario,
            db_url=self.db_url,
            runbook=load_runbook_text(NO_RULES, "<no rules>"),
            clock=WallClock(),
        )
        self._world = world
        server = uvicorn.Server(
            uvicorn.Config(
                world.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        tasks: list[asyncio.Task[None]] = []
        try:
            while not server.started:
                if serving.done():
                    serving.result()  # raises why it could not listen
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
            tasks = [asyncio.create_task(self._tick(world)), asyncio.create_task(self._shop())]
            self._ready.set()
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            server.should_exit = True
            await serving
            world.close()

    async def _tick(self, world: DemoWorld) -> None:
        next_tick = float(int(time.time())) + 1.0
        while True:
            await asyncio.sleep(max(0.0, next_tick - time.time()))
            world.tick(next_tick)
            next_tick += 1.0

    async def _shop(self) -> None:
        """Checkouts at ``rps``, a catalogue read every fourth one; at most 64 in flight."""
        gate = asyncio.Semaphore(64)
        pending: set[asyncio.Task[None]] = set()
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=10.0, limits=limits, trust_env=False
        ) as client:
            n = 0
            start = time.monotonic()
            try:
                while True:
                    n += 1
                    await asyncio.sleep(max(0.0, start + n / self.rps - time.monotonic()))
                    await gate.acquire()
                    task = asyncio.create_task(self._one(client, n, gate))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
            finally:
                for task in list(pending):
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _one(self, client: httpx.AsyncClient, n: int, gate: asyncio.Semaphore) -> None:
        try:
            product = 1 + n % CATALOG_SIZE
            if n % 4 == 0:
                route = "GET /products/{product_id}"
                response = await client.get(f"/products/{product}")
            else:
                route = "POST /checkout"
                body = {"items": [{"product_id": product, "qty": 1}], "card_token": "tok_visa"}
                response = await client.post("/checkout", json=body)
            seen = (route, response.status_code)
        except httpx.HTTPError:
            seen = ("transport error", 0)
        finally:
            gate.release()
        with self._lock:
            self._statuses[seen] += 1
