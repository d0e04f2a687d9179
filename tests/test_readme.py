"""The README's quick start is real code: it runs, serves and records."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest

from stanch.demo.scenario import DEFAULT_RUNBOOK

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the quick start has a python block"
    return match.group(1)


async def test_readme_quick_start_protects_an_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executing the quick start gives an app whose requests the engine records and steps."""
    shutil.copy(DEFAULT_RUNBOOK, tmp_path / "runbook.yaml")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(_quick_start(), "README quick start", "exec"), namespace)
    app = namespace["app"]
    engine = namespace["engine"]

    @app.get("/hello/{name}")  # type: ignore[attr-defined]
    def hello(name: str) -> dict[str, str]:
        return {"hello": name}

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with (
        app.router.lifespan_context(app),  # type: ignore[attr-defined]
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        for name in ("a", "b", "c"):
            response = await client.get(f"/hello/{name}", headers={"x-client-id": "c1"})
            assert response.status_code == 200
        events = namespace["buffer"].drain()  # type: ignore[attr-defined]
    assert [(e.route, e.status, e.client) for e in events] == [("/hello/{name}", 200, "c1")] * 3
    assert engine.store.next_id("probe") >= 1  # type: ignore[attr-defined]
    engine.store.close()  # type: ignore[attr-defined]
