# Shared by up.sh and down.sh: the folder, the fixed loopback ports, small helpers.
# Every value can be overridden from the environment.
E2E_DIR="${E2E_DIR:-/tmp/omp-e2e}"
E2E_IDP_PORT="${E2E_IDP_PORT:-19800}"
E2E_IDP_CONTROL_PORT="${E2E_IDP_CONTROL_PORT:-19801}"
E2E_IMAPS_PORT="${E2E_IMAPS_PORT:-19930}"
E2E_IMAP_PORT="${E2E_IMAP_PORT:-19143}"
E2E_POP3S_PORT="${E2E_POP3S_PORT:-19950}"
E2E_POP3_PORT="${E2E_POP3_PORT:-19110}"
E2E_SUBMISSION_PORT="${E2E_SUBMISSION_PORT:-19587}"
E2E_SUBMISSIONS_PORT="${E2E_SUBMISSIONS_PORT:-19465}"
# Mailbox users, each seeded with three messages, one of 10 MiB. IdP password: local part + "-idp".
E2E_USERS="${E2E_USERS:-alice@example.com bob@example.com carol@example.com}"
E2E_CLIENT_ID="${E2E_CLIENT_ID:-proxy}"
E2E_CLIENT_SECRET="${E2E_CLIENT_SECRET:-proxy-secret}"
E2E_TOKEN_LIFETIME="${E2E_TOKEN_LIFETIME:-3600}"
E2E_ROTATE="${E2E_ROTATE:-1}"
# The seeded big message: this many bytes in total (headers + body, CRLF line ends).
E2E_BIG_MESSAGE_BYTES=10485760
# Mail files belong to an existing unprivileged user: nobody / nogroup.
E2E_MAIL_UID="${E2E_MAIL_UID:-$(id -u nobody)}"
E2E_MAIL_GID="${E2E_MAIL_GID:-$(getent group nogroup | cut -d: -f3)}"

log() { echo "e2e-servers: $*" >&2; }
die() { log "error: $*"; exit 1; }

idp_password() { echo "${1%%@*}-idp"; }

# True when the PID file names a live process.
pid_alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -d ' \n' <"$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Bounded polls: 30 s each at most.
wait_port() {
  local i
  for i in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

wait_http() {
  local i
  for i in $(seq 1 150); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  log "no answer from $2 at $1"
  return 1
}

wait_banner() {
  local i line
  for i in $(seq 1 30); do
    line="$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; IFS= read -r -t 2 l <&3; printf '%s' \"\$l\"" 2>/dev/null || true)"
    [[ "$line" =~ $2 ]] && return 0
    sleep 0.5
  done
  return 1
}

# Waits up to 10 s for a process to end; then sends SIGKILL to that one process.
wait_gone() {
  local pid="$1" i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "pid $pid still there after 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

stop_postfix() {
  local p="$E2E_DIR/postfix" pid
  pid_alive "$p/spool/pid/master.pid" || return 0
  pid="$(tr -d ' \n' <"$p/spool/pid/master.pid")"
  log "stopping postfix (pid $pid)"
  postfix -c "$p/etc" stop 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid"
}

stop_dovecot() {
  local d="$E2E_DIR/dovecot" pid
  pid_alive "$d/run/master.pid" || return 0
  pid="$(tr -d ' \n' <"$d/run/master.pid")"
  log "stopping dovecot (pid $pid)"
  dovecot -c "$d/dovecot.conf" stop 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid"
}

stop_idp() {
  local f="$E2E_DIR/idp/idp.pid" pid
  if pid_alive "$f"; then
    pid="$(tr -d ' \n' <"$f")"
    # Only if it is still our mock-idp (a recycled PID is left alone).
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'mock-idp-e2e.mjs'; then
      log "stopping the mock identity provider (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid"
    fi
  fi
  rm -f "$f"
}
