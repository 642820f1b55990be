"""The API's edge middleware (pure ASGI): the operator body limit, and the loop's wake-up on new telemetry."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from samantha.api.app import MAX_BODY_BYTES, _Edges


class _View:
    def __init__(self) -> None:
        self.wakes = 0

    def on_ingest(self) -> None:
        self.wakes += 1


def _client() -> tuple[TestClient, _View]:
    app, view = FastAPI(), _View()

    @app.post("/v1/ingest/{table}")
    async def ingest(table: str, request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"n": len(body)}, status_code=200 if table == "requests" else 404)

    @app.post("/v1/rollout/start")
    async def start(request: Request) -> JSONResponse:
        return JSONResponse({"n": len(await request.body())})

    app.add_middleware(_Edges, view=view)  # type: ignore[arg-type]
    return TestClient(app), view


def test_operator_bodies_are_limited_and_ingest_bodies_are_not() -> None:
    client, _ = _client()
    big = b"x" * (MAX_BODY_BYTES + 1)
    r = client.post("/v1/rollout/start", content=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert client.post("/v1/rollout/start", content=b"{}").json() == {"n": 2}
    assert client.post("/v1/ingest/requests", content=big).json() == {"n": len(big)}  # its own, larger limit


def test_only_an_accepted_ingest_wakes_the_loop() -> None:
    client, view = _client()
    client.post("/v1/ingest/requests", content=b"{}")
    assert view.wakes == 1
    client.post("/v1/ingest/nope", content=b"{}")  # refused: nothing new to evaluate
    client.post("/v1/rollout/start", content=b"{}")
    assert view.wakes == 1
