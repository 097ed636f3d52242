#!/usr/bin/env bash
# Sets up what the benchmarks need (the project with its `bench` extra in
# .venv, the Node peer's packages, a running PostgreSQL), then runs them.
#   benchmarks/run.sh [--quick] [--runs N] [--big] [--profile] [...]
# Every argument goes to `python -m benchmarks.run` (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.rindle-bench-installed"
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install --quiet -e ".[bench]"
  echo "$want" > "$stamp"
fi

peer=benchmarks/peer
nstamp="$peer/node_modules/.rindle-installed"
nwant="$(cat "$peer/package.json" "$peer/package-lock.json" | sha256sum | cut -c1-16)"
if [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$nwant" ]; then
  (cd "$peer" && npm ci --silent --no-audit --no-fund)
  echo "$nwant" > "$nstamp"
fi

# The run creates (and drops) its own database on the local PostgreSQL.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

exec python -m benchmarks.run "$@"
