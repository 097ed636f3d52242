# Sourced by the scripts: a virtual environment (.venv unless RINDLE_VENV names
# another) with the project and its extras installed, refreshed whenever
# setup.cfg or the requirements asked for change.
#   PYTHON               the interpreter that creates the venv (python3)
#   RINDLE_VENV          the venv's directory, relative to the repository (.venv)
#   RINDLE_EXTRAS        which extras the caller needs: "dev,beat" for the tests
#                        (dev includes celery and example); the demo needs only
#                        "example,celery". A venv with more extras serves as well.
#   RINDLE_REQUIREMENTS  further requirements installed with the project, e.g.
#                        "Django==6.1.*" (scripts/matrix)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${RINDLE_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
extras="${RINDLE_EXTRAS:-dev,beat}"
requirements="${RINDLE_REQUIREMENTS:-}"
stamp="$VENV/.rindle-installed"
want="$( (cat setup.cfg pyproject.toml; echo "$requirements") | sha256sum | cut -c1-16)"
have="$(cat "$stamp" 2>/dev/null || true)"
# The stamp reads "<hash> <extras>"; dev brings celery and example along.
installed=""
[ "${have%% *}" = "$want" ] && installed=",${have#* },"
case "$installed" in *,dev,*) installed="$installed,celery,example," ;; esac
serves=1
[ -n "$installed" ] || serves=0
for extra in ${extras//,/ }; do
  case "$installed" in *",$extra,"*) ;; *) serves=0 ;; esac
done
if [ "$serves" = 0 ]; then
  python -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086  (requirements: words, each a requirement)
  python -m pip install --quiet -e ".[$extras]" $requirements
  echo "$want $extras" > "$stamp"
fi
# Node packages of the real-client tests (only for the tests) and of the
# example upload page.
node_dirs="example_project/frontend"
case ",$extras," in *,dev,*) node_dirs="tests/clients $node_dirs" ;; esac
for dir in $node_dirs; do
  if [ -f "$dir/package.json" ]; then
    nstamp="$dir/node_modules/.rindle-installed"
    nwant="$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -c1-16)"
    if [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$nwant" ]; then
      (cd "$dir" && if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi)
      echo "$nwant" > "$nstamp"
    fi
  fi
done
# The example upload page's bundle (example_project/static/example/, not in
# git), rebuilt when it is missing or its sources changed.
page=example_project/frontend
if [ -f "$page/package.json" ]; then
  bstamp=example_project/static/example/.rindle-built
  bwant="$(cat "$page/package.json" "$page/package-lock.json" $(find "$page/src" -type f | sort) | sha256sum | cut -c1-16)"
  if [ ! -f example_project/static/example/upload.js ] || [ ! -f "$bstamp" ] || [ "$(cat "$bstamp")" != "$bwant" ]; then
    (cd "$page" && npm run --silent build)
    echo "$bwant" > "$bstamp"
  fi
fi

# How the scripts run pytest: in RINDLE_TEST_WORKERS processes at once
# (pytest-xdist; 0 runs in this one), each test file whole in one of them, so
# a module's servers and cluster start once; each process has its own
# database, SeaweedFS, ports and tail folder (tests/settings.py, conftest.py).
# The ten slowest tests are listed at the end.
PYTEST_RUN=(-n "${RINDLE_TEST_WORKERS:-3}" --dist loadfile --durations=10)
