"""Coordination: orchestration time, claims per second under competition, a 50-voter decision.

    python benchmarks/coordination.py [--tasks 10000] [--workers 8] [--cli-tasks 400] [--voters 50]

Prints:
- task orchestration (a task with 5 subtasks into a swarm of 8 agents): median ms, in-process
  core call and a cold `gemini-flow task orchestrate` process (seed figure: 156 ms);
- claims per second with --workers processes competing over --tasks ready tasks, each process
  looping on the core's claim (one BEGIN IMMEDIATE transaction per claim), and checks that every
  task was claimed exactly once; then the same with `gemini-flow task claim` processes over
  --cli-tasks tasks (process start-up included);
- a decision with --voters voters (byzantine, threshold 0.99 so every vote is needed): time from
  request to decision in-process, and with one `gemini-flow consensus vote` process per voter,
  --workers at a time (seed figure: 2.4 s).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from coordination_fixtures import add_agent, add_swarm, open_db  # noqa: E402

from gemini_flow_cli.core import consensus, tasks  # noqa: E402
from gemini_flow_cli.core.db import Database  # noqa: E402
from gemini_flow_cli.errors import GeminiFlowError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def gemini_flow() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def make_swarm(path: Path, agents: int) -> list[str]:
    db = open_db(path)
    names = [f"agent-{i}" for i in range(agents)]
    caps = [["database", "schema"], ["react", "login"], ["testing"], ["docs"], ["api"], ["security"], ["ops"], ["ui"]]
    for i, name in enumerate(names):
        add_agent(db, name, capabilities=caps[i % len(caps)], performance_score=0.5)
    add_swarm(db, "swarm-1", members=names, max_agents=agents)
    db.close()
    return names


SUBTASKS = ["Design auth schema", "Implement login API", "Write security tests", "Build login UI", "Document the API"]


def bench_orchestrate(folder: Path, runs: int = 15) -> None:
    path = folder / "orchestrate.db"
    make_swarm(path, 8)
    db = Database.open(path)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        tasks.orchestrate(db, "Implement user authentication", swarm_id="swarm-1", priority="high",
                          subtasks=SUBTASKS, estimated_duration=7200)
        times.append((time.perf_counter() - start) * 1000)
    db.close()
    argv = [*gemini_flow(), "--db", str(path), "--json", "task", "orchestrate", "Implement user authentication",
            "--swarm", "swarm-1", "--priority", "high", "--estimated-duration", "7200"]
    for sub in SUBTASKS:
        argv += ["--subtask", sub]
    cold = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        cold.append((time.perf_counter() - start) * 1000)
    print(f"orchestration (5 subtasks, 8 agents): core {statistics.median(times):.2f} ms, "
          f"cold process {statistics.median(cold):.1f} ms  (seed: 156 ms)")


def _claim_worker(path: str, agent: str, queue, ready, go) -> None:
    db = Database.open(path, busy_timeout=60)
    with db.read() as conn:
        conn.execute("SELECT 1 FROM tasks LIMIT 1").fetchall()  # warm: schema read, file open
    ready.put(agent)
    go.wait()
    claimed = []
    while True:
        try:
            claimed.append(tasks.claim(db, agent)["id"])
        except GeminiFlowError as exc:
            if exc.code != "NOT_FOUND":
                raise
            break
    db.close()
    queue.put(claimed)


# The claim-order index of schema 1.0.8; --without-claim-index drops it to show what it buys.
DROP_CLAIM_INDEX = "DROP INDEX idx_tasks_claim"


def bench_claims(folder: Path, count: int, workers: int, claim_index: bool = True) -> None:
    path = folder / ("claims-indexed.db" if claim_index else "claims-unindexed.db")
    names = make_swarm(path, workers)
    db = Database.open(path)
    start = time.perf_counter()
    with db.write():  # one transaction for the whole set-up
        for i in range(count):
            tasks.orchestrate(db, f"job {i}", swarm_id="swarm-1", priority=tasks.PRIORITIES[i % 4],
                              strategy="adaptive")
        if not claim_index:
            db.conn.execute(DROP_CLAIM_INDEX)
    db.close()
    setup = time.perf_counter() - start
    ctx = mp.get_context("spawn")
    queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim_worker, args=(str(path), names[i], queue, ready, go))
             for i in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    start = time.perf_counter()
    go.set()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    flat = [t for r in results for t in r]
    assert len(flat) == count and len(set(flat)) == count, (len(flat), len(set(flat)))
    label = "" if claim_index else " WITHOUT the claim index"
    print(f"claims{label}, {workers} competing processes (core) over {count} tasks: {count / elapsed:.0f} claims/s "
          f"({elapsed:.2f} s; per process {[len(r) for r in results]}; "
          f"every task claimed exactly once; set-up {setup:.1f} s)")


def cached_bytecode_env(folder: Path) -> dict[str, str]:
    """The environment of the measured processes: bytecode cached, as an installed copy has it
    (some shells set PYTHONDONTWRITEBYTECODE, which would recompile every module of every
    process and measure the compiler instead of the command)."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# Builds the claims database with a checkout's own code, so an older checkout gets a schema it
# knows (it refuses a database from a newer one). Run as `python -c` with the checkout first.
_MAKE_CLAIMS_DB = """
import sys
from pathlib import Path
sys.path[:0] = [{checkout!r}, {tests!r}]
from coordination_fixtures import add_agent, add_swarm, open_db
from gemini_flow_cli.core import tasks
db = open_db(Path({path!r}))
names = [f"agent-{{i}}" for i in range({workers})]
for name in names:
    add_agent(db, name, performance_score=0.5)
add_swarm(db, "swarm-1", members=names, max_agents={workers})
with db.write():
    for i in range({count}):
        tasks.orchestrate(db, f"job {{i}}", swarm_id="swarm-1", strategy="adaptive")
db.close()
"""


def bench_cli_claims(folder: Path, count: int, workers: int, checkout: Path | None = None,
                     label: str = "") -> float:
    """Claims/s of ``workers`` loops of `gemini-flow task claim` processes; with ``checkout``,
    of that checkout's code (`python -m` with it first on sys.path, its own database)."""
    path = folder / f"cli-claims-{len(list(folder.glob('cli-claims-*.db')))}.db"
    env = cached_bytecode_env(folder)
    source = checkout if checkout is not None else ROOT
    subprocess.run([sys.executable, "-c", _MAKE_CLAIMS_DB.format(
        checkout=str(source), tests=str(source / "tests"), path=str(path), workers=workers, count=count)],
        env=env, check=True)
    names = [f"agent-{i}" for i in range(workers)]
    command = gemini_flow()
    if checkout is not None:
        command = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(checkout)!r}); import runpy; "
                   "runpy.run_module('gemini_flow_cli', run_name='__main__', alter_sys=True)"]
    argv = [*command, "--db", str(path), "--json", "task", "claim", "--agent"]
    # Warm: bytecode written, pages cached (an unknown agent claims nothing and exits 1).
    subprocess.run([*argv, "no-such-agent"], capture_output=True, env=env)

    def loop(agent: str) -> int:
        got = 0
        while subprocess.run([*argv, agent], capture_output=True, env=env).returncode == 0:
            got += 1
        return got

    start, before = time.perf_counter(), os.times()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        got = list(pool.map(loop, names))
    elapsed, after = time.perf_counter() - start, os.times()
    assert sum(got) == count, got
    # CPU time of the claim processes (all of them, the last failing claim of each loop included):
    # on a machine shared with other jobs the steadier figure, since claims/s is bound by it.
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    print(f"claims, {workers} competing `gemini-flow task claim` loops{label} over {count} tasks: "
          f"{count / elapsed:.1f} claims/s ({elapsed:.2f} s), CPU {cpu / count * 1000:.1f} ms per claim")
    return count / elapsed, cpu / count


def bench_decision(folder: Path, voters: int, workers: int) -> None:
    path = folder / "decision.db"
    names = make_swarm(path, voters)
    db = Database.open(path)
    start = time.perf_counter()
    decision = consensus.request(db, "swarm-1", "Deploy v1.0.4", "byzantine", threshold=0.99, timeout_ms=600_000)
    for name in names:
        result = consensus.vote(db, decision["decisionId"], name, "approve", confidence=0.9)
    core = (time.perf_counter() - start) * 1000
    assert result["decision"] == "approved" and result["votingData"]["approve"] == voters
    db.close()
    base = [*gemini_flow(), "--db", str(path), "--json", "consensus"]
    start = time.perf_counter()
    opened = subprocess.run([*base, "request", "--swarm", "swarm-1", "--proposal", "Deploy", "--type", "byzantine",
                             "--threshold", "0.99", "--timeout", "600000"], capture_output=True, check=True, text=True)
    import json

    decision_id = json.loads(opened.stdout)["decisionId"]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        codes = list(pool.map(lambda a: subprocess.run([*base, "vote", decision_id, "approve", "--agent", a],
                                                        capture_output=True).returncode, names))
    cli = (time.perf_counter() - start) * 1000
    final = json.loads(subprocess.run([*base, "show", decision_id], capture_output=True, text=True).stdout)
    assert codes == [0] * voters and final["decision"] == "approved", (codes, final["decision"])
    print(f"decision with {voters} voters: core {core:.1f} ms (request + {voters} votes); "
          f"{voters} vote processes, {workers} at a time: {cli:.0f} ms  (seed: 2.4 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--cli-tasks", type=int, default=400)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--without-claim-index", action="store_true",
                        help="Also measure claims with the claim-order index (schema 1.0.8) dropped.")
    parser.add_argument("--before", type=Path, default=None,
                        help="an older checkout: its CLI claims are measured in the same run, alternating")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of CLI claims with --before")
    parser.add_argument("--claims-only", action="store_true", help="only the CLI claims")
    args = parser.parse_args()
    os.environ.pop("GEMINI_FLOW_DB", None)
    # Older checkouts refuse a database below a folder others can write, sticky /tmp included.
    under = None
    if args.before is not None:
        under = Path.home() / ".cache"
        under.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=under) as tmp:
        folder = Path(tmp)
        if not args.claims_only:
            bench_orchestrate(folder)
            bench_claims(folder, args.tasks, args.workers)
        if args.without_claim_index:
            bench_claims(folder, args.tasks, args.workers, claim_index=False)
        if args.before is None:
            bench_cli_claims(folder, args.cli_tasks, args.workers)
        else:
            # This checkout and the older one, alternating, both through `python -m`.
            now, before = [], []
            for round_ in range(args.rounds):
                now.append(bench_cli_claims(folder, args.cli_tasks, args.workers, ROOT, f" (this checkout {round_})"))
                before.append(bench_cli_claims(folder, args.cli_tasks, args.workers, args.before.resolve(),
                                               f" (before {round_})"))
            rate = [statistics.median(r[0] for r in side) for side in (now, before)]
            cpu = [statistics.median(r[1] for r in side) for side in (now, before)]
            paired = statistics.median(n[0] / b[0] for n, b in zip(now, before))
            print(f"claims/s, median of {args.rounds}: this checkout {rate[0]:.1f}, before {rate[1]:.1f}: "
                  f"x{rate[0] / rate[1]:.2f} (median of the rounds' ratios x{paired:.2f}); CPU per claim "
                  f"{cpu[0] * 1000:.1f} ms against {cpu[1] * 1000:.1f} ms: x{cpu[1] / cpu[0]:.2f} the claims per "
                  "CPU-second")
        if not args.claims_only:
            bench_decision(folder, args.voters, args.workers)


if __name__ == "__main__":
    main()
