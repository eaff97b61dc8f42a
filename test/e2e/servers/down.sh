#!/usr/bin/env bash
# Stops exactly what up.sh started, by its PID files: postfix, dovecot, the mock identity
# provider. Safe to run twice, or before up.sh ever ran. Leaves $E2E_DIR in place for a look
# at the logs and Maildirs; `down.sh --purge` removes it too.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

[ -d "$E2E_DIR" ] || exit 0
stop_postfix
stop_dovecot
stop_idp
rm -f "$E2E_DIR/ports.env" "$E2E_DIR/env.json"
if [ "${1:-}" = "--purge" ]; then
  case "$E2E_DIR" in /|/tmp|/root|/home|"") die "refusing to remove $E2E_DIR" ;; esac
  rm -rf "$E2E_DIR"
  log "removed $E2E_DIR"
fi
log "stopped"
