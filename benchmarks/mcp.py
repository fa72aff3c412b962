"""The MCP server's cost to a model and its speed (issue 13).

- The tool list's size: the JSON of `tools/list` as a real server returns it over stdio, in
  characters and in tokens estimated at 4 characters per token (the documented rule of thumb;
  no tokenizer is installed). The budget is 3,000 tokens.
- Tool-call latency, as a client sees it: `--calls` (default 200) calls of `memory_retrieve`
  and of `memory_store` to one `gemini-flow mcp serve` process over stdio, driven by the MCP
  SDK's own client, each timed from the request to the parsed result; p50 and p99.
- The reference, in the same run: the same operation as a CLI process (`gemini-flow memory
  retrieve` / `memory store`, `--runs` times, default 15), which is what an agent without MCP
  pays per call (process start-up included), and a bare `python -c pass` as the floor of any
  process.

Usage: python benchmarks/mcp.py [--calls 200] [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def command() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def process_times(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()

    # This file is named mcp.py: drop its folder from the path, or `import mcp` would import it.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("mcp", None)
    import anyio
    from mcp import Client, StdioServerParameters

    folder = Path(tempfile.mkdtemp(prefix="gf-mcp-bench-"))
    db = folder / "hive.db"
    env = {**os.environ, "GEMINI_FLOW_DB": str(db)}
    subprocess.run([*command(), "memory", "store", "config", '{"workers": 4, "region": "eu"}'], env=env,
                   check=True, capture_output=True)
    gf = command()
    params = StdioServerParameters(command=gf[0], args=[*gf[1:], "--db", str(db), "mcp", "serve"],
                                   env={k: v for k, v in os.environ.items() if k in ("HOME", "PATH")})

    async def session():
        figures = {}
        async with Client(params) as client:
            listed = await client.list_tools()
            tools = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed.tools]
            text = json.dumps(tools, separators=(",", ":"), ensure_ascii=False)
            figures["tools"] = (len(tools), len(text), -(-len(text) // 4))
            for name, arguments in (("memory_retrieve", {"key": "config"}),
                                    ("memory_store", {"key": "counter", "value": {"n": 1}})):
                await client.call_tool(name, arguments)  # warm: first imports in the server
                times = []
                for _ in range(options.calls):
                    started = time.perf_counter()
                    result = await client.call_tool(name, arguments)
                    times.append(time.perf_counter() - started)
                    assert not result.is_error, result
                figures[name] = times
        return figures

    figures = anyio.run(session)
    cli_retrieve = process_times([*gf, "memory", "retrieve", "config"], options.runs, env)
    cli_store = process_times([*gf, "memory", "store", "counter", '{"n": 1}'], options.runs, env)
    bare = process_times([sys.executable, "-c", "pass"], options.runs, env)

    count, chars, tokens = figures["tools"]
    print(f"tool list: {count} tools, {chars} characters of JSON, ~{tokens} tokens (4 chars/token; budget 3000)")
    ms = lambda v: f"{v * 1000:7.1f} ms"  # noqa: E731
    print(f"{'operation':<34} {'p50':>10} {'p99':>10}   n")
    for label, times in (("MCP memory_retrieve (stdio)", figures["memory_retrieve"]),
                         ("MCP memory_store (stdio)", figures["memory_store"]),
                         ("CLI process memory retrieve", cli_retrieve),
                         ("CLI process memory store", cli_store),
                         ("python -c pass (floor)", bare)):
        print(f"{label:<34} {ms(statistics.median(times)):>10} {ms(percentile(times, 99)):>10}   {len(times)}")


if __name__ == "__main__":
    main()
