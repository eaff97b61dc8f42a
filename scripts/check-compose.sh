#!/usr/bin/env bash
# Checks a compose file without a Docker engine (CI has none). Debian's docker-compose (1.29,
# `apt-get install docker-compose`) validates the file against the compose schema and resolves
# it offline, without a daemon: bad YAML, unknown keys, an undeclared named volume, depends_on
# naming a missing service, a malformed port all fail. Its warnings (an unset variable without
# a default, for one) fail this check too, so that nothing it noticed goes unread.
# Usage: scripts/check-compose.sh [docker-compose.yml]
set -euo pipefail
file="${1:-docker-compose.yml}"
if ! command -v docker-compose >/dev/null; then
  echo "check-compose: docker-compose is not installed (apt-get install docker-compose)" >&2
  exit 1
fi
if ! out=$(docker-compose -f "$file" config -q 2>&1); then
  printf 'check-compose: %s is invalid:\n%s\n' "$file" "$out" >&2
  exit 1
fi
if [ -n "$out" ]; then
  printf 'check-compose: %s: docker-compose warns:\n%s\n' "$file" "$out" >&2
  exit 1
fi
# `config` parses ports but does not range-check them (a published port 99999 passes, and
# "1143:1143:1143:1143" becomes an address): check the normalized ports here, with the YAML
# module docker-compose itself depends on.
docker-compose -f "$file" config | python3 -c '
import ipaddress, re, sys, yaml
def port(n): return isinstance(n, int) and 1 <= n <= 65535
bad = []
for name, service in (yaml.safe_load(sys.stdin).get("services") or {}).items():
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ok = port(p.get("target")) and ("published" not in p or port(p["published"]))
        else:
            m = re.fullmatch(r"(.+):(\d*):(\d+)/(tcp|udp|sctp)", str(p))
            try:
                ok = bool(m) and bool(ipaddress.ip_address(m[1].strip("[]"))) and (m[2] == "" or port(int(m[2]))) and port(int(m[3]))
            except ValueError:
                ok = False
        if not ok: bad.append(f"services.{name}.ports: {p}")
if bad: sys.exit("check-compose: invalid ports:\n" + "\n".join(bad))
'
echo "check-compose: $file ok ($(docker-compose -f "$file" config --services | paste -sd ' '))"
