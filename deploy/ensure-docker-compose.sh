#!/usr/bin/env bash
# Installs Debian's docker-compose (1.29, Python) to validate docker-compose.yaml with `docker-compose config`.
# That needs no Docker engine. Idempotent: does nothing when docker-compose is already on PATH.
set -euo pipefail

if command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi

run_as_root() {
  if [[ "$(id -u)" == "0" ]]; then "$@"; else sudo -n "$@"; fi
}

# Test processes run side by side: one installs while the others wait, then find it there.
exec 9>/tmp/ensure-docker-compose.lock
flock 9
if command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
run_as_root apt-get update -qq
run_as_root apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
docker-compose version
