#!/usr/bin/env bash
# Verifies a systemd unit without running it: `systemd-analyze verify` loads it as systemd would.
# It exits non-zero for some problems (an ExecStart binary that does not exist) but only warns
# about others, such as an unknown key or a bad value, which systemd would then ignore (a
# sandboxing option silently dropped), so any output at all fails this check.
# Usage: scripts/check-systemd-unit.sh [deploy/oauth-mail-proxy.service]
set -euo pipefail
unit="${1:-deploy/oauth-mail-proxy.service}"
if ! command -v systemd-analyze >/dev/null; then
  echo "check-systemd-unit: systemd-analyze is not installed (apt-get install systemd)" >&2
  exit 1
fi
if ! out=$(systemd-analyze verify "$unit" 2>&1) || [ -n "$out" ]; then
  printf 'check-systemd-unit: %s:\n%s\n' "$unit" "$out" >&2
  exit 1
fi
echo "check-systemd-unit: $unit ok"
