#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian machine
# (redis-server, PostgreSQL, Prometheus and its Alertmanager, which the tests
# start themselves on free loopback ports; Chromium and playwright-core for
# the dashboard test; schemathesis from PyPI for the fuzzing of the OpenAPI
# document), checks formatting and lints, then runs the whole suite. Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/prometheus-alertmanager ] || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ -x /usr/bin/prometheus ] || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Only for a hang: the harness prints every thread's stack before it aborts.
command -v gdb >/dev/null 2>&1 || need+=(gdb)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# schemathesis (tests/schemathesis.rs) runs from a virtual environment.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# The dashboard's browser test drives Debian's chromium with playwright-core
# (no browser download), pinned by tests/e2e/package-lock.json.
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi
# The dashboard's Chart.js is vendored in assets/vendor; its lockfile's
# release is installed beside it (every run: three small packages) so a
# test can compare them byte for byte.
(cd assets/vendor && npm ci --no-audit --no-fund --silent)
# schemathesis from PyPI, every package pinned by tests/schemathesis/requirements.txt
# (reinstalled when that file changes).
st_env=target/schemathesis
if ! cmp -s tests/schemathesis/requirements.txt "$st_env/requirements.txt"; then
  rm -rf "$st_env"
  python3 -m venv "$st_env"
  "$st_env/bin/pip" install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
  cp tests/schemathesis/requirements.txt "$st_env/requirements.txt"
fi
# Style and lints first: the house stays formatted and warning-free
# (Cargo.toml's [lints] deny unwrap outside tests and unsafe code).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# The Debian packages start their own default servers; the tests use their
# own instances and do not need those.
cargo test --locked
