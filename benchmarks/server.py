"""Benchmark: `gemini-flow serve` under load, beside the same operations as CLI processes.

    .venv/bin/python benchmarks/server.py [--seconds 2] [--runs 5] [--cli-requests 40]

On a fresh database (WAL, synchronous=FULL, the defaults) with 1,000 entries, a server on
127.0.0.1 and a writer's API key, for 1, 8 and 32 concurrent clients:

- `GET /api/v1/memory/retrieve` (keys in rotation) and `POST /api/v1/memory/store` (new keys):
  requests/s, p50 and p99 latency, each the median of ``--runs`` runs of ``--seconds``;
- the floor: the same load against a bare Starlette app on uvicorn answering ``{}`` (what the
  framework and the load generator cost with no gemini-flow in the way);
- the same retrieve and store as `gemini-flow memory retrieve|store` processes, with the same
  numbers of concurrent lanes.

The load generator is a small asyncio HTTP/1.1 client with keep-alive connections (one per
client), so it costs far less CPU than the server it measures; it shares the machine's cores with
the server all the same, so the figures are a lower bound. Goal (issue 14): retrieve >= 1,000
requests/s at p99 <= 50 ms on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("gemini-flow")
GEMINI_FLOW = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "gemini_flow_cli"]
CONCURRENCY = (1, 8, 32)
ENTRIES = 1000

BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def ok(request):
    return Response(b"{}", media_type="application/json")
uvicorn.run(Starlette(routes=[Route("/", ok)]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


async def _client(port: int, make_request, until: float, latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.perf_counter() < until:
            request = make_request(n)
            n += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{status} {body[:200]!r}")
    finally:
        writer.close()


def load(port: int, make_request, clients: int, seconds: float) -> dict[str, float]:
    """``clients`` keep-alive connections sending requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []

    async def main() -> float:
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(_client(port, lambda n, c=c: make_request(c, n), until, latencies, errors)
                               for c in range(clients)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def http_get(path: str, token: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()


def http_post(path: str, token: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


def cli_lanes(db: Path, argv_for, lanes: int, total: int) -> dict[str, float]:
    """``total`` CLI invocations over ``lanes`` concurrent lanes: invocations/s, p50, p99."""
    env = {**os.environ, "GEMINI_FLOW_DB": str(db)}
    latencies: list[float] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        subprocess.run([*GEMINI_FLOW, *argv_for(i)], env=env, check=True, capture_output=True)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(lanes) as pool:
        list(pool.map(one, range(total)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rps": total / elapsed, "p50": latencies[len(latencies) // 2] * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def row(label: str, clients: int, figures: dict[str, float]) -> None:
    print(f"{label:<28} {clients:>7} {figures['rps']:>10.0f} {figures['p50']:>9.1f} {figures['p99']:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cli-requests", type=int, default=40)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="gf-server-bench-"))
    db = folder / ".hive-mind" / "hive.db"
    env = {**os.environ, "GEMINI_FLOW_DB": str(db)}
    lines = "".join(json.dumps({"action": "store", "key": f"k{i}", "value": {"n": i, "text": "x" * 40}}) + "\n"
                    for i in range(ENTRIES))
    subprocess.run([*GEMINI_FLOW, "memory", "batch", "-"], input=lines, text=True, env=env, check=True,
                   capture_output=True)
    token = json.loads(subprocess.run([*GEMINI_FLOW, "--json", "apikey", "create", "bench", "--role", "writer"],
                                      env=env, check=True, capture_output=True, text=True).stdout)["token"]

    port, bare_port = free_port(), free_port()
    server = subprocess.Popen([*GEMINI_FLOW, "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)], stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        wait_for(bare_port)
        print(f"{ENTRIES} entries; {args.runs} runs of {args.seconds:g} s per figure (medians); "
              f"{os.cpu_count()} cores shared by server and load generator")
        print(f"{'':<28} {'clients':>7} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
        bare_request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        counter = iter(range(10**9))
        for clients in CONCURRENCY:
            row("floor: bare Starlette {}", clients, medians(
                [load(bare_port, lambda c, n: bare_request, clients, args.seconds) for _ in range(args.runs)]))
            row("HTTP retrieve", clients, medians([load(
                port, lambda c, n: http_get(f"/api/v1/memory/retrieve?key=k{(c * 997 + n) % ENTRIES}", token),
                clients, args.seconds) for _ in range(args.runs)]))
            row("HTTP store", clients, medians([load(
                port, lambda c, n: http_post("/api/v1/memory/store", token,
                                             {"key": f"s{next(counter)}", "value": {"n": n}, "namespace": "bench"}),
                clients, args.seconds) for _ in range(args.runs)]))
        for clients in CONCURRENCY:
            row("CLI memory retrieve", clients, cli_lanes(db, lambda i: ["memory", "retrieve", f"k{i % ENTRIES}"],
                                                           clients, args.cli_requests))
            row("CLI memory store", clients, cli_lanes(db, lambda i: ["memory", "store", f"c{clients}-{i}", "1", "-n", "bench"],
                                                        clients, args.cli_requests))
    finally:
        for process in (server, bare):
            process.send_signal(signal.SIGTERM)
            process.wait(30)


if __name__ == "__main__":
    main()
