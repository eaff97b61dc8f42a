/**
 * Every size and time limit of the proxy, named once. Listener config may lower or raise
 * some of them; these are the defaults.
 */

/** Longest command line accepted before login (IMAP; RFC 7162 recommends at least 8192). */
export const MAX_PRELOGIN_LINE_BYTES = 8192;
/** Largest IMAP literal accepted before login (a username or password, never a message). */
export const MAX_PRELOGIN_LITERAL_BYTES = 8192;
/** Commands a client may get wrong before login before we hang up. */
export const MAX_BAD_COMMANDS = 5;
/**
 * A refused user name is logged (auth.fail) up to this many characters: enough for any email
 * address (RFC 5321's 254), while a client cannot make every refusal write kilobytes to the log.
 */
export const MAX_LOGGED_USERNAME_CHARS = 320;
/** From connect to a successful login. */
export const LOGIN_TIMEOUT_MS = 60_000;
/** Silence allowed between two client commands before login. */
export const PRELOGIN_IDLE_TIMEOUT_MS = 30_000;
/** Opening the TCP (and TLS) connection to the upstream server. */
export const UPSTREAM_CONNECT_TIMEOUT_MS = 15_000;
/** The whole upstream login: greeting, STARTTLS, CAPABILITY, AUTHENTICATE. */
export const UPSTREAM_LOGIN_TIMEOUT_MS = 30_000;
/** Longest line we read from an upstream server during its login dialogue. */
export const MAX_UPSTREAM_LINE_BYTES = 64 * 1024;
/** Silence on a relayed session before it is closed (IMAP IDLE clients re-issue within 29 min). */
export const RELAY_IDLE_TIMEOUT_MS = 31 * 60_000;
/** A call to an identity provider's token endpoint. */
export const TOKEN_REQUEST_TIMEOUT_MS = 20_000;
/** Largest body accepted from a token endpoint (a token response is a few kilobytes). */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/** An access token response without expires_in is taken to last this long. */
export const DEFAULT_TOKEN_LIFETIME_MS = 60 * 60_000;
/** A token is refreshed when it has less than this left. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** Background refresh fires this long before the margin is reached, to spread load. */
export const BACKGROUND_REFRESH_LEAD_MS = 60_000;
/** After a temporary refresh failure, the background refresher waits this long (doubled each time). */
export const BACKGROUND_RETRY_MIN_MS = 30_000;
export const BACKGROUND_RETRY_MAX_MS = 10 * 60_000;
/** The background refresher never fires sooner than this after its last run (guards against expires_in: 0). */
export const BACKGROUND_REFRESH_MIN_DELAY_MS = 5_000;
/** On stop, in-flight refreshes get this long to finish (and store a rotated token) before they are aborted. */
export const TOKEN_STOP_GRACE_MS = 5_000;
/** A `command` token provider must finish within this. */
export const TOKEN_COMMAND_TIMEOUT_MS = 30_000;
/** Largest output accepted from a `command` token provider. */
export const MAX_TOKEN_COMMAND_OUTPUT_BYTES = 64 * 1024;
/** Default connection caps per listener and per client address. */
export const MAX_CONNECTIONS_PER_LISTENER = 1000;
export const MAX_CONNECTIONS_PER_ADDRESS = 50;
/** Grace period for sessions on SIGTERM before they are closed. */
export const SHUTDOWN_DEADLINE_MS = 10_000;
/** Largest whole command (its lines plus literals) accepted before login. */
export const MAX_PRELOGIN_COMMAND_BYTES = 32 * 1024;
/** A TLS handshake with a local client (implicit TLS or after STARTTLS). */
export const CLIENT_TLS_HANDSHAKE_TIMEOUT_MS = 20_000;
/** After our goodbye, how long the client gets to close before we cut it off. */
export const CLOSE_LINGER_MS = 2_000;
/** When one side of a relay has closed, how long the other gets to finish before it is cut off. */
export const RELAY_CLOSE_GRACE_MS = 5_000;
/**
 * The relay writes what arrives in one event-loop turn in batches of this size: TLS's largest
 * record (RFC 8446 section 5.1), so that a TLS client gets full records (docs/benchmarks.md).
 */
export const RELAY_WRITE_BATCH_BYTES = 16 * 1024;
/** Getting a token and logging in upstream, including the one retry with a refreshed token. */
export const BACKEND_LOGIN_TIMEOUT_MS = 2 * (TOKEN_REQUEST_TIMEOUT_MS + UPSTREAM_LOGIN_TIMEOUT_MS);
/** Largest untagged response (literals included) from an upstream server during its login dialogue. */
export const MAX_UPSTREAM_RESPONSE_BYTES = 64 * 1024;
/** Untagged lines an upstream server may send during one step of its login dialogue. */
export const MAX_UPSTREAM_UNTAGGED_LINES = 200;
/**
 * Longest POP3 command line, CRLF included (RFC 2449 section 4). It bounds commands only: a
 * client's answer to an AUTH challenge may be longer (RFC 5034 section 4) and is bounded by
 * MAX_PRELOGIN_LINE_BYTES like every other line before login.
 */
export const MAX_POP3_COMMAND_LINE_BYTES = 255;
/** SMTP: default largest message a listener accepts (its `max_message_size`); above the big providers' own limits (about 35 MB), so theirs is the one a client normally meets. */
export const MAX_SMTP_MESSAGE_BYTES = 50 * 1024 * 1024;
/** SMTP: default recipients per message (its `max_recipients`); RFC 5321 section 4.5.3.1.8 asks for at least 100. */
export const MAX_SMTP_RECIPIENTS = 500;
/** SMTP: longest command line we send upstream, CRLF included (RFC 5321 section 4.5.3.1.4; RFC 4954 section 4 for AUTH). */
export const MAX_SMTP_COMMAND_LINE_BYTES = 512;
/** SMTP: lines of one multi-line reply accepted from an upstream server. */
export const MAX_SMTP_REPLY_LINES = 100;
/**
 * SMTP: waiting on the upstream for one step: its reply to MAIL, RCPT, DATA or RSET, or room to
 * write the next piece of a message (RFC 5321 section 4.5.3.2 gives 2 to 5 minutes per step).
 */
export const SMTP_UPSTREAM_STEP_TIMEOUT_MS = 2 * 60_000;
/** SMTP: waiting for the upstream's reply after the final dot (RFC 5321 section 4.5.3.2.6: 10 minutes). */
export const SMTP_UPSTREAM_DATA_END_TIMEOUT_MS = 10 * 60_000;
/**
 * SMTP: client bytes smtp-server's command parser may hold unparsed before the socket is paused:
 * two socket reads (a read is up to 64 kB; one 16 kB record on a TLS listener). Node's default
 * (16 kB on Node 20, 64 kB from 22) is one read at most (src/smtp/stream-buffers.ts).
 */
export const SMTP_PARSER_BUFFER_BYTES = 128 * 1024;
/** SMTP: message bytes waiting, per session in DATA, between smtp-server's parser and the upstream writer. */
export const SMTP_DATA_BUFFER_BYTES = 256 * 1024;
/** SMTP: header section read to rewrite the From field; a longer one is passed on unchanged. */
export const MAX_SMTP_HEADER_REWRITE_BYTES = 256 * 1024;
/** A needs-authorization hook (command or webhook) must finish within this. */
export const HOOK_TIMEOUT_MS = 10_000;
/** Largest request body the admin listener reads (a sign-in form is a few bytes). */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;
/** A browser sign-in started on the status page waits this long for the identity provider's answer. */
export const BROWSER_SIGN_IN_TTL_MS = 15 * 60_000;
/** An admin request must arrive whole within this (slow clients are cut off). */
export const ADMIN_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Login failures from one client address (an IPv6 client: its /64), SPEC section 4: this many
 * are answered at once, then each answer waits LOGIN_DELAY_BASE_MS, doubling up to
 * LOGIN_DELAY_MAX_MS; LOGIN_LOCKOUT_AFTER failures within LOGIN_FAILURE_WINDOW_MS refuse the
 * address for LOGIN_LOCKOUT_MS. The config's `login_throttle` may change them.
 */
export const LOGIN_FREE_FAILURES = 3;
export const LOGIN_DELAY_BASE_MS = 500;
export const LOGIN_DELAY_MAX_MS = 8_000;
export const LOGIN_LOCKOUT_AFTER = 10;
export const LOGIN_LOCKOUT_MS = 15 * 60_000;
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;
/**
 * An upstream ca_file is read again at most this often (its SecureContext is rebuilt when the
 * text changed), instead of on every connection: four thread-pool round trips per login.
 */
export const UPSTREAM_CA_FILE_RECHECK_MS = 10_000;
/**
 * A TLS listener's certificate files are read again at a handshake when the last read is older
 * than this: a renewal that sends no SIGHUP (a Kubernetes secret, certbot without a deploy hook)
 * is in use within a minute, at the cost of two small reads a minute on a busy listener.
 */
export const LOCAL_CERT_RECHECK_MS = 60_000;
/**
 * Mail servers whose latest TLS session is kept for resumption (per trust configuration); the
 * least recently stored is forgotten first.
 */
export const UPSTREAM_TLS_SESSIONS_MAX = 256;
/** Resumption offers a mail server may decline in a row before it is offered none for a while. */
export const UPSTREAM_TLS_DECLINES_BEFORE_PAUSE = 3;
/** How long a server that declines resumption is offered no session (then it is tried again). */
export const UPSTREAM_TLS_RESUME_PAUSE_MS = 60 * 60_000;
