"""Start-up cost: median wall time of cold processes, against the floor of raw sqlite3.

    python benchmarks/startup.py [--runs 20]

Prints the median of N cold processes for `--version`, `memory store`, `memory retrieve`,
`memory retrieve` of an encrypted value (when the encryption module exists), `--help` (which
builds every group's commands), the floor: `python -c` opening the same database with sqlite3
and selecting one row, and `python -c "import typer"`. Ratios are to the floor; "after typer"
is what a command costs beyond Typer's own import (our imports, building the command, opening
the database, the schema check, the query, the output).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def gemini_flow() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def medians_ms(cases: dict[str, list[str]], runs: int, env: dict, cwd: Path) -> dict[str, float]:
    """The median wall time of each case, the cases interleaved round by round, so that a change
    in the machine's load during the run weighs on every case alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():
        subprocess.run(argv, env=env, cwd=cwd, capture_output=True)  # warm: bytecode and page cache
    for _ in range(runs):
        for name, argv in cases.items():
            start = time.perf_counter()
            result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
            times[name].append((time.perf_counter() - start) * 1000)
            if result.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode()}")
    return {name: statistics.median(samples) for name, samples in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout of older code (e.g. `git worktree add /tmp/before main`): its "
                             "store and retrieve are measured in the same run, via python -m")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gf-startup-"))
    db = folder / ".hive-mind" / "hive.db"
    env = {**os.environ, "GEMINI_FLOW_DB": str(db), "GEMINI_FLOW_ENCRYPTION_KEY": "benchmark-secret-key",
           # Measure what an installed copy pays: bytecode cached (some shells set
           # PYTHONDONTWRITEBYTECODE, which would recompile every module on every run).
           "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
    for name in ("NO_COLOR", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    gf = gemini_flow()
    subprocess.run([*gf, "memory", "store", "bench-key", '{"theme": "dark", "n": 1}'], env=env, check=True,
                   capture_output=True)
    cases = {
        "floor: python -c sqlite3 select": [
            sys.executable, "-c",
            f"import sqlite3; c = sqlite3.connect({str(db)!r}); "
            "c.execute(\"SELECT value FROM memory_store WHERE key = 'bench-key'\").fetchone()",
        ],
        # What Typer alone costs (kept: pinned below 0.29); everything a command adds is on top.
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "gemini-flow --version": [*gf, "--version"],
        "gemini-flow memory store": [*gf, "memory", "store", "bench-key", '{"theme": "dark", "n": 2}'],
        "gemini-flow memory retrieve": [*gf, "memory", "retrieve", "bench-key"],
        "gemini-flow --help (every group)": [*gf, "--help"],
    }
    if args.before is not None:
        for label, src in (("before", args.before.resolve()), ("now", Path(__file__).resolve().parents[1])):
            # Both through `python -m` with the checkout first on sys.path, so the two differ
            # only in the code.
            code = f"import sys; sys.path.insert(0, {str(src)!r}); import runpy; " \
                   "runpy.run_module('gemini_flow_cli', run_name='__main__', alter_sys=True)"
            py = [sys.executable, "-c", code]
            if label == "before":
                # Its own database, made by its own code: an older checkout refuses a newer schema.
                own = folder / "before" / ".hive-mind" / "hive.db"
                py += ["--db", str(own)]
                subprocess.run([*py, "memory", "store", "bench-key", '{"theme": "dark", "n": 1}'], env=env,
                               check=True, capture_output=True)
            cases[f"{label}: memory store"] = [*py, "memory", "store", "bench-key", '{"theme": "dark", "n": 3}']
            cases[f"{label}: memory retrieve"] = [*py, "memory", "retrieve", "bench-key"]
    encrypted = subprocess.run([*gf, "memory", "store", "bench-secret", '"s3cret"', "--encrypt"], env=env,
                               capture_output=True)
    if encrypted.returncode == 0:
        cases["gemini-flow memory retrieve (encrypted)"] = [*gf, "memory", "retrieve", "bench-secret"]
    else:
        print(f"(encrypted retrieve skipped: {encrypted.stderr.decode().strip()})")
    results = medians_ms(cases, args.runs, env, folder)
    floor = results["floor: python -c sqlite3 select"]
    typer_ms = results["python -c 'import typer'"]
    print(f"median of {args.runs} cold processes, Python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  {'':<42} {'median':>10}   {'/ floor':>7}   {'after typer':>11}")
    for name, ms in results.items():
        after = f"{ms - typer_ms:+8.1f} ms" if not name.startswith(("floor", "python")) else ""
        print(f"  {name:<42} {ms:7.1f} ms   x{ms / floor:5.2f}   {after:>11}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
