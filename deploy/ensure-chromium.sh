#!/usr/bin/env bash
# Installs Debian's headless Chromium and ChromeDriver for the deployment test's UI check.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo) and apt.
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi

run_as_root() {
  if [[ "$(id -u)" == "0" ]]; then "$@"; else sudo -n "$@"; fi
}

# Test processes run side by side: one installs while the others wait, then find it there.
exec 9>/tmp/ensure-chromium.lock
flock 9
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
run_as_root apt-get update -qq
run_as_root apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
