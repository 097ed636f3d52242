# Sourced by scripts/test: says, before anything runs, which tests that need a
# real component (a browser, a proxy, a database, a broker) this machine cannot
# run, and the command that installs what is missing. Under CI
# (RINDLE_TUS_REQUIRE_SERVICES=1) those tests fail instead of skipping.
preflight_missing=()
preflight_apt=()
preflight_check() {  # what, tests, apt package ("" when apt cannot install it)
  preflight_missing+=("$1 -> $2")
  [ -n "$3" ] && preflight_apt+=("$3")
  return 0
}
[ -x "${RINDLE_TUS_CHROMIUM:-/usr/bin/chromium}" ] || preflight_check "Chromium (${RINDLE_TUS_CHROMIUM:-/usr/bin/chromium})" "tests/test_browser.py" chromium
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || preflight_check "nginx" "tests/test_nginx.py" nginx-light
command -v curl >/dev/null || preflight_check "curl" "tests/test_refusals.py (raw requests)" curl
command -v node >/dev/null || preflight_check "Node.js" "tus-js-client tests (test_client_tus_js, test_client_faults, test_hostile_load)" nodejs
redis_url="${REDIS_URL:-redis://127.0.0.1:6379/0}"
python - "$redis_url" <<'PY' || preflight_check "Redis at $redis_url" "tests/test_tasks.py (a real Celery worker)" redis-server
import socket, sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=2).close()
except OSError:
    sys.exit(1)
PY
case " ${TEST_DATABASES:-sqlite postgres} " in
  *" postgres "*)
    pg_url="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    python - "$pg_url" <<'PY' || preflight_check "PostgreSQL at $pg_url" "the whole PostgreSQL run (TEST_DATABASES=sqlite skips it)" postgresql
import socket, sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=2).close()
except OSError:
    sys.exit(1)
PY
    ;;
esac
if [ "${#preflight_missing[@]}" -gt 0 ]; then
  if [ -n "${RINDLE_TUS_REQUIRE_SERVICES:-}" ]; then
    echo "== missing real components: these tests will FAIL (RINDLE_TUS_REQUIRE_SERVICES is set)"
  else
    echo "== missing real components: these tests will be SKIPPED"
  fi
  for line in "${preflight_missing[@]}"; do echo "   $line"; done
  if [ "${#preflight_apt[@]}" -gt 0 ]; then
    echo "   install: sudo apt-get update && sudo apt-get install -y ${preflight_apt[*]}"
  fi
fi
