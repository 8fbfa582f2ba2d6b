#!/usr/bin/env bash
# One-time installation of the benchmark's tools: nginx and wrk from Debian,
# pypiserver and devpi-server into their own virtualenvs under bench/.venvs/.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-$BENCH_DIR/../.venv/bin/python}"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    apt-get update
    apt-get install -y nginx wrk curl
fi

make_venv() {
    local name="$1"
    shift
    if [ ! -x "$BENCH_DIR/.venvs/$name/bin/python" ]; then
        "$PYTHON" -m venv "$BENCH_DIR/.venvs/$name"
    fi
    "$BENCH_DIR/.venvs/$name/bin/pip" install --quiet "$@"
}

make_venv pypiserver pypiserver passlib gunicorn watchdog
make_venv devpi devpi-server devpi-client
echo "benchmark tools ready"
