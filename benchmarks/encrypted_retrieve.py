"""How long `gemini-flow memory retrieve` takes for a plain and an encrypted value.

An encrypted retrieve pays for importing cryptography and deriving the key with scrypt once per
process. This measures, as real processes (what a script in a loop pays):

- `memory retrieve` of a plain value,
- `memory retrieve` of an encrypted value for scrypt N = 2^15, 2^16, 2^17 (r=8, p=1),
- scrypt alone in-process for the same N,
- a bare `python -c "import sqlite3; ..."` reading the same row, for scale.

Usage: python benchmarks/encrypted_retrieve.py [--runs 15]
The budget (issue C) is <= 300 ms for an encrypted retrieve with N >= 2^15.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECRET = "benchmark secret"


def command() -> list[str]:
    script = Path(sys.executable).with_name("gemini-flow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gemini_flow_cli"]


def make_db(path: Path, n: int) -> None:
    from gemini_flow_cli.core import config, crypto
    from gemini_flow_cli.core.db import Database
    from gemini_flow_cli.core.memory import MemoryManager

    db = Database.open(path)
    with db.write() as conn:
        config.put_internal(conn, crypto.KDF_ROW, crypto.new_params(SECRET, n=n), "benchmark")
    cipher = crypto.Cipher(db, SECRET)
    manager = MemoryManager(db, cipher=lambda: cipher)
    manager.store("plain", {"theme": "dark"})
    manager.store("svc-api-key", "sk-live-0123456789abcdef", encrypted=True)
    db.close()


def time_runs(argv: list[str], env: dict, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed: {done.stderr}")
    return times


def summary(times: list[float]) -> str:
    return f"median {statistics.median(times):6.1f} ms  min {min(times):6.1f} ms  max {max(times):6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    from gemini_flow_cli.core import crypto

    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, runs={args.runs}")
    print(f"default parameters: N=2^{crypto.SCRYPT_N.bit_length() - 1}, r={crypto.SCRYPT_R}, p={crypto.SCRYPT_P}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GEMINI_FLOW_ENCRYPTION_KEY": SECRET, "XDG_CONFIG_HOME": tmp,
               # Measure what an installed copy pays: bytecode cached (in the temporary folder,
               # not the source tree) even where PYTHONDONTWRITEBYTECODE is set.
               "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for argv in ([*command(), "--help"],):  # warm the bytecode cache
            subprocess.run(argv, env=env, capture_output=True)
        path = Path(tmp) / "n15.db"
        make_db(path, 2**15)
        raw = time_runs([sys.executable, "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                         "print(c.execute(\"SELECT value FROM memory_store WHERE key='plain'\").fetchone()[0])",
                         str(path)], env, args.runs)
        plain = time_runs([*command(), "--db", str(path), "memory", "retrieve", "plain"], env, args.runs)
        print(f"raw sqlite3 process            {summary(raw)}")
        print(f"retrieve plain                 {summary(plain)}  ({statistics.median(plain) / statistics.median(raw):.1f}x raw)")
        for exponent in (15, 16, 17):
            n = 2**exponent
            start = time.perf_counter()
            Scrypt(salt=os.urandom(16), length=32, n=n, r=8, p=1).derive(SECRET.encode())
            derive_ms = (time.perf_counter() - start) * 1000
            path = Path(tmp) / f"n{exponent}.db"
            if not path.exists():
                make_db(path, n)
            encrypted = time_runs([*command(), "--db", str(path), "memory", "retrieve", "svc-api-key"], env, args.runs)
            verdict = "ok" if statistics.median(encrypted) <= 300 else "over budget"
            print(f"retrieve encrypted N=2^{exponent}     {summary(encrypted)}  (scrypt alone {derive_ms:5.1f} ms, "
                  f"{n * 8 * 128 // (1024 * 1024)} MiB) {verdict}")


if __name__ == "__main__":
    main()
