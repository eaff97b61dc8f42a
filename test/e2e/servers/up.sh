#!/usr/bin/env bash
# Starts the end-to-end servers, as root, with all state in one folder ($E2E_DIR, default
# /tmp/omp-e2e) and nothing written under /etc:
#   - the project's mock identity provider (from dist/, built if missing) with an RFC 7662
#     introspection endpoint, plus a control port for tests;
#   - Dovecot 2.3: IMAPS, IMAP+STARTTLS, POP3S, POP3+STLS, only XOAUTH2 and OAUTHBEARER,
#     tokens checked by introspection at the mock identity provider;
#   - Postfix: submission (STARTTLS) and submissions (implicit TLS), SASL through Dovecot's
#     auth socket, delivering to the same Maildirs.
# Installs the Debian packages it needs when they are missing. Idempotent: a second run
# regenerates the configs, restarts a daemon whose config changed, starts what does not run
# and leaves the rest alone. Ports are fixed and loopback-only; tests read them from
# $E2E_DIR/ports.env or $E2E_DIR/env.json.
# Stop everything with down.sh (same folder).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

[ "$(id -u)" = 0 ] || die "run as root (Dovecot and Postfix are started as root, then drop privileges)"

mkdir -p "$E2E_DIR"
chmod 0755 "$E2E_DIR"
# One up.sh at a time; the daemons it starts get the lock's descriptor closed (9>&-).
exec 9>"$E2E_DIR/.up.lock"
flock -w 600 9 || die "another up.sh holds $E2E_DIR/.up.lock"

# ---------------------------------------------------------------- packages
PACKAGES=(dovecot-core dovecot-imapd dovecot-pop3d postfix swaks fetchmail msmtp curl python3 openssl ca-certificates)

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# Debian's own dovecot/postfix service, if apt starts one (it does where services may start),
# would also listen on 25/143/993/...; it is stopped again, its files left alone.
system_daemons_running() {
  local running=""
  [ -s /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null && running+=" dovecot"
  [ -s /var/spool/postfix/pid/master.pid ] && kill -0 "$(tr -d ' ' </var/spool/postfix/pid/master.pid)" 2>/dev/null && running+=" postfix"
  echo "$running"
}

install_packages() {
  local missing
  missing="$(missing_packages)"
  [ -n "$missing" ] || return 0
  log "installing:" $missing
  local before after
  before="$(system_daemons_running)"
  # "No configuration": postfix installs without asking and without a main.cf of its own.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >"$E2E_DIR/apt.log" 2>&1 ||
    { tail -30 "$E2E_DIR/apt.log" >&2; die "apt-get install failed (log: $E2E_DIR/apt.log)"; }
  after="$(system_daemons_running)"
  case "$after" in *dovecot*) case "$before" in *dovecot*) ;; *)
    log "stopping the system dovecot service that apt started"
    service dovecot stop >/dev/null 2>&1 || kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true ;; esac ;; esac
  case "$after" in *postfix*) case "$before" in *postfix*) ;; *)
    log "stopping the system postfix service that apt started"
    service postfix stop >/dev/null 2>&1 || true ;; esac ;; esac
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    case "$before" in *dovecot*) ;; *) systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true ;; esac
    case "$before" in *postfix*) ;; *) systemctl disable --now postfix.service >/dev/null 2>&1 || true ;; esac
  fi
}

# ---------------------------------------------------------------- TLS
make_tls() {
  local d="$E2E_DIR/tls"
  mkdir -p "$d"
  if [ -s "$d/server.crt" ] && [ -s "$d/ca.crt" ] &&
     openssl verify -CAfile "$d/ca.crt" "$d/server.crt" >/dev/null 2>&1 &&
     openssl x509 -checkend 86400 -noout -in "$d/server.crt" >/dev/null; then
    return 0
  fi
  log "making a throwaway CA and a server certificate for localhost / 127.0.0.1"
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 30 \
    -subj "/CN=oauth-mail-proxy e2e throwaway CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  cat >"$d/server.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
  chmod 0644 "$d/ca.crt" "$d/server.crt"
  chmod 0600 "$d/ca.key" "$d/server.key"
}

# ---------------------------------------------------------------- mock identity provider
start_idp() {
  local d="$E2E_DIR/idp"
  mkdir -p "$d"
  if [ ! -f "$REPO/dist/demo/mock-idp.js" ]; then
    log "dist/ is missing: npm run build"
    (cd "$REPO" && npm run build >"$E2E_DIR/build.log" 2>&1) || { tail -30 "$E2E_DIR/build.log" >&2; die "npm run build failed"; }
  fi
  if pid_alive "$d/idp.pid"; then
    log "mock identity provider already running (pid $(cat "$d/idp.pid"))"
    return 0
  fi
  local args=(--port "$E2E_IDP_PORT" --control-port "$E2E_IDP_CONTROL_PORT"
    --client "$E2E_CLIENT_ID:$E2E_CLIENT_SECRET" --lifetime "$E2E_TOKEN_LIFETIME")
  local u
  for u in $E2E_USERS; do args+=(--user "$u:$(idp_password "$u")"); done
  [ "$E2E_ROTATE" = 1 ] && args+=(--rotate)
  log "starting the mock identity provider on 127.0.0.1:$E2E_IDP_PORT (control :$E2E_IDP_CONTROL_PORT)"
  # setsid: its own session, so that it outlives this script and its terminal.
  setsid node "$HERE/mock-idp-e2e.mjs" "${args[@]}" >"$d/idp.json" 2>"$d/idp.log" </dev/null 9>&- &
  echo $! >"$d/idp.pid"
}

# ---------------------------------------------------------------- Maildirs
seed_maildirs() {
  local u
  for u in $E2E_USERS; do
    local md="$E2E_DIR/mail/$u/Maildir"
    mkdir -p "$md/cur" "$md/new" "$md/tmp"
    python3 "$HERE/seed-maildir.py" "$md" "$u" --big
    chown -R "$E2E_MAIL_UID:$E2E_MAIL_GID" "$E2E_DIR/mail/$u"
  done
  chmod 0755 "$E2E_DIR/mail"
}

# ---------------------------------------------------------------- Dovecot
# A checksum of config files, to restart a running daemon only when its config changed.
config_sum() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }

DOVECOT_CHANGED=0
POSTFIX_CHANGED=0

write_dovecot_conf() {
  local d="$E2E_DIR/dovecot" before
  mkdir -p "$d/run" "$d/state"
  before="$(config_sum "$d/oauth2.conf.ext" "$d/dovecot.conf")"
  cat >"$d/oauth2.conf.ext" <<EOF
# RFC 7662 introspection at the mock identity provider (generated by up.sh)
introspection_mode = post
introspection_url = http://127.0.0.1:$E2E_IDP_PORT/introspect
force_introspection = yes
# Dovecot's post mode always sends HTTP Basic client authentication (RFC 7662 section 2.1).
client_id = $E2E_CLIENT_ID
client_secret = $E2E_CLIENT_SECRET
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 10000
EOF
  cat >"$d/dovecot.conf" <<EOF
# Generated by test/e2e/servers/up.sh; do not edit (rewritten on every run).
instance_name = omp-e2e
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
info_log_path = $d/dovecot.log
debug_log_path = $d/dovecot.log
protocols = imap pop3
listen = 127.0.0.1

ssl = required
ssl_cert = <$E2E_DIR/tls/server.crt
ssl_key = <$E2E_DIR/tls/server.key
ssl_min_protocol = TLSv1.2
ssl_prefer_server_ciphers = yes
disable_plaintext_auth = yes

auth_mechanisms = xoauth2 oauthbearer
auth_verbose = yes
auth_debug = ${E2E_DOVECOT_DEBUG:-no}
auth_cache_size = 0

passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $d/oauth2.conf.ext
}
userdb {
  driver = static
  args = uid=$E2E_MAIL_UID gid=$E2E_MAIL_GID home=$E2E_DIR/mail/%u
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
first_valid_gid = 1
mail_max_userip_connections = 100

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $E2E_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $E2E_IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $E2E_POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $E2E_POP3S_PORT
    ssl = yes
  }
}
# Postfix asks this socket which mechanisms to offer and to check AUTH (smtpd_sasl_type = dovecot).
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
protocol imap {
  imap_max_line_length = 256k
}
protocol pop3 {
  pop3_uidl_format = %08Xu%08Xv
}
EOF
  doveconf -c "$d/dovecot.conf" -n >/dev/null 2>"$d/doveconf.err" ||
    { cat "$d/doveconf.err" >&2; die "dovecot config invalid"; }
  [ "$before" = "$(config_sum "$d/oauth2.conf.ext" "$d/dovecot.conf")" ] || DOVECOT_CHANGED=1
}

start_dovecot() {
  local d="$E2E_DIR/dovecot"
  if pid_alive "$d/run/master.pid"; then
    log "dovecot already running (pid $(cat "$d/run/master.pid")), config unchanged"
    return 0
  fi
  log "starting dovecot"
  dovecot -c "$d/dovecot.conf" 9>&-
}

# ---------------------------------------------------------------- Postfix
write_postfix_conf() {
  local p="$E2E_DIR/postfix" before
  mkdir -p "$p/etc" "$p/spool" "$p/lib"
  before="$(config_sum "$p/etc/main.cf" "$p/etc/master.cf" "$p/etc/vmailbox")"
  chown postfix:postfix "$p/lib"
  local u
  : >"$p/etc/vmailbox.new"
  for u in $E2E_USERS; do echo "$u $u/Maildir/" >>"$p/etc/vmailbox.new"; done
  mv "$p/etc/vmailbox.new" "$p/etc/vmailbox"
  cat >"$p/etc/main.cf" <<EOF
# Generated by test/e2e/servers/up.sh; do not edit (rewritten on every run).
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/lib
# Read-only: postfix-files and dynamicmaps.cf as the Debian package ships them.
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $p/maillog
maillog_file_prefixes = $p
myhostname = mail.example.com
mydomain = example.com
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
relay_domains =
biff = no
smtputf8_enable = yes
# Long XOAUTH2 initial responses: the default 2048 cuts them.
line_length_limit = 65536
message_size_limit = 52428800
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# Everything is delivered here, to the Dovecot Maildirs; nothing ever leaves this machine.
virtual_mailbox_domains = example.com
virtual_mailbox_base = $E2E_DIR/mail
virtual_mailbox_maps = texthash:$p/etc/vmailbox
virtual_uid_maps = static:$E2E_MAIL_UID
virtual_gid_maps = static:$E2E_MAIL_GID
virtual_minimum_uid = 1
default_transport = error:the e2e mail server delivers to example.com only
relay_transport = error:the e2e mail server delivers to example.com only

smtpd_banner = \$myhostname ESMTP oauth-mail-proxy e2e
smtpd_tls_cert_file = $E2E_DIR/tls/server.crt
smtpd_tls_key_file = $E2E_DIR/tls/server.key
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
# Absolute: smtpd is not chrooted (master.cf).
smtpd_sasl_path = $E2E_DIR/dovecot/run/auth-postfix
smtpd_sasl_security_options = noanonymous
smtpd_client_restrictions = permit_sasl_authenticated, reject
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
EOF
  cat >"$p/etc/master.cf" <<EOF
# Generated by test/e2e/servers/up.sh. Nothing chrooted; no port 25.
127.0.0.1:$E2E_SUBMISSION_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submission
127.0.0.1:$E2E_SUBMISSIONS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  postfix -c "$p/etc" check 2>"$p/check.err" ||
    { cat "$p/check.err" >&2; tail -5 "$p/maillog" >&2 2>/dev/null; die "postfix config invalid"; }
  [ "$before" = "$(config_sum "$p/etc/main.cf" "$p/etc/master.cf" "$p/etc/vmailbox")" ] || POSTFIX_CHANGED=1
}

# A changed config means a restart, not a reload: a reload of Dovecot leaves Postfix's smtpd
# processes talking to the old auth process, and their next AUTH fails with 454.
restart_changed() {
  if ! pid_alive "$E2E_DIR/dovecot/run/master.pid" && pid_alive "$E2E_DIR/postfix/spool/pid/master.pid"; then
    log "dovecot is not running but postfix is: restarting postfix with it"
    stop_postfix
  fi
  if [ "$DOVECOT_CHANGED" = 1 ] && pid_alive "$E2E_DIR/dovecot/run/master.pid"; then
    log "dovecot config changed: restarting dovecot and postfix"
    stop_postfix
    stop_dovecot
  fi
  if [ "$POSTFIX_CHANGED" = 1 ] && pid_alive "$E2E_DIR/postfix/spool/pid/master.pid"; then
    log "postfix config changed: restarting postfix"
    stop_postfix
  fi
}

start_postfix() {
  local p="$E2E_DIR/postfix"
  if pid_alive "$p/spool/pid/master.pid"; then
    log "postfix already running (pid $(tr -d ' ' <"$p/spool/pid/master.pid")), config unchanged"
    return 0
  fi
  log "starting postfix"
  postfix -c "$p/etc" start 2>"$p/start.err" 9>&- ||
    { cat "$p/start.err" >&2; tail -10 "$p/maillog" >&2 2>/dev/null; die "postfix did not start"; }
}

# ---------------------------------------------------------------- readiness and the env files
wait_ready() {
  local port
  wait_http "http://127.0.0.1:$E2E_IDP_PORT/.well-known/oauth-authorization-server" "mock identity provider" \
    || { cat "$E2E_DIR/idp/idp.log" >&2; die "the mock identity provider did not answer"; }
  wait_http "http://127.0.0.1:$E2E_IDP_CONTROL_PORT/health" "mock identity provider control" || die "control port did not answer"
  for port in "$E2E_IMAPS_PORT" "$E2E_IMAP_PORT" "$E2E_POP3S_PORT" "$E2E_POP3_PORT"; do
    wait_port "$port" || { tail -20 "$E2E_DIR/dovecot/dovecot.log" >&2; die "dovecot does not answer on $port"; }
  done
  for port in "$E2E_SUBMISSION_PORT" "$E2E_SUBMISSIONS_PORT"; do
    wait_port "$port" || { tail -20 "$E2E_DIR/postfix/maillog" >&2; die "postfix does not answer on $port"; }
  done
  # The greeting, not only the TCP accept: one byte of banner through TLS and through plaintext.
  wait_banner "$E2E_IMAP_PORT" '^\* OK' || die "no IMAP greeting on $E2E_IMAP_PORT"
  wait_banner "$E2E_POP3_PORT" '^\+OK' || die "no POP3 greeting on $E2E_POP3_PORT"
  wait_banner "$E2E_SUBMISSION_PORT" '^220 ' || die "no SMTP greeting on $E2E_SUBMISSION_PORT"
  [ -S "$E2E_DIR/dovecot/run/auth-postfix" ] || die "dovecot's auth socket for postfix is missing"
}

write_env_files() {
  local users_json
  users_json="$(printf '"%s",' $E2E_USERS)"
  cat >"$E2E_DIR/ports.env.new" <<EOF
# Generated by test/e2e/servers/up.sh
E2E_DIR=$E2E_DIR
E2E_CA_FILE=$E2E_DIR/tls/ca.crt
E2E_SERVER_HOST=localhost
E2E_IMAPS_PORT=$E2E_IMAPS_PORT
E2E_IMAP_PORT=$E2E_IMAP_PORT
E2E_POP3S_PORT=$E2E_POP3S_PORT
E2E_POP3_PORT=$E2E_POP3_PORT
E2E_SUBMISSION_PORT=$E2E_SUBMISSION_PORT
E2E_SUBMISSIONS_PORT=$E2E_SUBMISSIONS_PORT
E2E_IDP_URL=http://127.0.0.1:$E2E_IDP_PORT
E2E_IDP_TOKEN_URL=http://127.0.0.1:$E2E_IDP_PORT/token
E2E_IDP_INTROSPECTION_URL=http://127.0.0.1:$E2E_IDP_PORT/introspect
E2E_IDP_CONTROL_URL=http://127.0.0.1:$E2E_IDP_CONTROL_PORT
E2E_CLIENT_ID=$E2E_CLIENT_ID
E2E_CLIENT_SECRET=$E2E_CLIENT_SECRET
E2E_USERS="$E2E_USERS"
E2E_MAIL_DIR=$E2E_DIR/mail
E2E_BIG_MESSAGE_BYTES=$E2E_BIG_MESSAGE_BYTES
E2E_DOVECOT_LOG=$E2E_DIR/dovecot/dovecot.log
E2E_POSTFIX_LOG=$E2E_DIR/postfix/maillog
EOF
  mv "$E2E_DIR/ports.env.new" "$E2E_DIR/ports.env"
  cat >"$E2E_DIR/env.json.new" <<EOF
{
  "dir": "$E2E_DIR",
  "caFile": "$E2E_DIR/tls/ca.crt",
  "serverHost": "localhost",
  "ports": {
    "imaps": $E2E_IMAPS_PORT, "imap": $E2E_IMAP_PORT,
    "pop3s": $E2E_POP3S_PORT, "pop3": $E2E_POP3_PORT,
    "submission": $E2E_SUBMISSION_PORT, "submissions": $E2E_SUBMISSIONS_PORT,
    "idp": $E2E_IDP_PORT, "idpControl": $E2E_IDP_CONTROL_PORT
  },
  "idp": {
    "url": "http://127.0.0.1:$E2E_IDP_PORT",
    "tokenUrl": "http://127.0.0.1:$E2E_IDP_PORT/token",
    "introspectionUrl": "http://127.0.0.1:$E2E_IDP_PORT/introspect",
    "controlUrl": "http://127.0.0.1:$E2E_IDP_CONTROL_PORT",
    "clientId": "$E2E_CLIENT_ID",
    "clientSecret": "$E2E_CLIENT_SECRET"
  },
  "users": [${users_json%,}],
  "mailDir": "$E2E_DIR/mail",
  "bigMessageBytes": $E2E_BIG_MESSAGE_BYTES,
  "logs": {
    "dovecot": "$E2E_DIR/dovecot/dovecot.log",
    "postfix": "$E2E_DIR/postfix/maillog",
    "idp": "$E2E_DIR/idp/idp.log"
  }
}
EOF
  mv "$E2E_DIR/env.json.new" "$E2E_DIR/env.json"
}

install_packages
make_tls
start_idp
seed_maildirs
write_dovecot_conf
write_postfix_conf
restart_changed
start_dovecot
start_postfix
wait_ready
write_env_files

cat <<EOF
e2e servers are up (all state in $E2E_DIR; stop with: bash $HERE/down.sh)
  mock IdP    http://127.0.0.1:$E2E_IDP_PORT  (token /token, introspection /introspect, control :$E2E_IDP_CONTROL_PORT)
              client $E2E_CLIENT_ID:$E2E_CLIENT_SECRET, token lifetime ${E2E_TOKEN_LIFETIME}s, rotation $( [ "$E2E_ROTATE" = 1 ] && echo on || echo off )
  IMAPS       localhost:$E2E_IMAPS_PORT    IMAP+STARTTLS localhost:$E2E_IMAP_PORT
  POP3S       localhost:$E2E_POP3S_PORT    POP3+STLS     localhost:$E2E_POP3_PORT
  submissions localhost:$E2E_SUBMISSIONS_PORT    submission    localhost:$E2E_SUBMISSION_PORT (STARTTLS)
  CA          $E2E_DIR/tls/ca.crt
  users       $E2E_USERS (IdP password: <user>-idp, e.g. for the password grant)
  Maildirs    $E2E_DIR/mail/<user>/Maildir
  logs        $E2E_DIR/dovecot/dovecot.log $E2E_DIR/postfix/maillog $E2E_DIR/idp/idp.log
  env         $E2E_DIR/ports.env  $E2E_DIR/env.json
EOF
