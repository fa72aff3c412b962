#!/usr/bin/env bash
# Failover drill for the PostgreSQL backend (README "Running on PostgreSQL"; not run by CI).
#
# A primary and a streaming standby on 127.0.0.1, one multi-host URL with
# target_session_attrs=read-write. gemini-flow writes through the primary; the primary is killed;
# the standby is promoted; the same command line, unchanged, goes on writing to the new primary,
# and everything committed before the kill is there.
#
# Usage: scripts/pg-failover-drill.sh [gemini-flow command, default: gemini-flow on PATH]
# Needs PostgreSQL's initdb, pg_ctl and pg_basebackup (Debian: apt-get install postgresql). Run as
# root, the servers run as the "postgres" user.
set -euo pipefail
gf=${1:-gemini-flow}
bin=""
for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && bin=$dir; done
[ -z "$bin" ] && bin=$(dirname "$(command -v initdb)")
work=$(mktemp -d)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$work" && chmod 755 "$work"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
p1=$(free_port); p2=$(free_port)
stop_all() {
  for d in primary standby; do
    [ -f "$work/$d/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$work/$d" -m immediate stop >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap stop_all EXIT
step() { printf '\n== %s\n' "$*"; }

step "primary on 127.0.0.1:$p1"
as_pg "$bin/initdb" -D "$work/primary" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$bin/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w -o "-c listen_addresses=127.0.0.1 -p $p1 -k $work" start >/dev/null
step "standby on 127.0.0.1:$p2 (pg_basebackup -R: streaming from the primary)"
as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$p1" -U postgres -D "$work/standby" -R -X stream >/dev/null
as_pg "$bin/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w -o "-c listen_addresses=127.0.0.1 -p $p2 -k $work" start >/dev/null

url="postgresql://postgres@127.0.0.1:$p1,127.0.0.1:$p2/postgres?target_session_attrs=read-write&connect_timeout=3"
step "writes through $url"
for i in 1 2 3; do $gf --db "$url" memory store "before-$i" "$i" >/dev/null; done
$gf --db "$url" memory incr counter --by 10 >/dev/null
sleep 1  # let the standby replay the last commit (asynchronous replication)

step "kill -9 the primary, promote the standby"
as_pg "$bin/pg_ctl" -D "$work/primary" -m immediate stop >/dev/null
start=$(date +%s.%N)
as_pg "$bin/pg_ctl" -D "$work/standby" -w promote >/dev/null

step "the same command line goes on"
$gf --db "$url" memory store after 1 >/dev/null
echo "first write after the promotion: $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$start" "$(date +%s.%N)") s after promote began"
$gf --db "$url" memory incr counter >/dev/null
for key in before-1 before-2 before-3 after counter; do
  printf '%s = %s\n' "$key" "$($gf --db "$url" memory retrieve "$key")"
done
[ "$($gf --db "$url" memory retrieve counter)" = 11 ] || { echo "FAILED: counter is not 11" >&2; exit 1; }
step "drill passed: nothing committed before the kill was lost, commands resumed on the new primary"
