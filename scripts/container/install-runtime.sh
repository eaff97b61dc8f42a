#!/bin/sh
# Installs the production dependencies pinned in package-lock.json into DIR (default: the
# current folder), and nothing else: no dev dependencies, no build, no lockfile changes.
# One list of commands for every runtime install, so that they cannot drift apart: the
# Dockerfile RUNs it, scripts/check-container-steps.mjs runs it in CI in a clean folder, and
# the README's systemd install runs it into /opt/oauth-mail-proxy.
set -eu
dir="${1:-.}"
cd "$dir"
if [ ! -f package-lock.json ]; then
  echo "install-runtime.sh: no package-lock.json in $dir" >&2
  exit 1
fi
npm ci --omit=dev --no-audit --no-fund
