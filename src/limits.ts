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
/** Getting a token and logging in upstream, including the one retry with a refreshed token. */
export const BACKEND_LOGIN_TIMEOUT_MS = 2 * (TOKEN_REQUEST_TIMEOUT_MS + UPSTREAM_LOGIN_TIMEOUT_MS);
/** Largest untagged response (literals included) from an upstream server during its login dialogue. */
export const MAX_UPSTREAM_RESPONSE_BYTES = 64 * 1024;
/** Untagged lines an upstream server may send during one step of its login dialogue. */
export const MAX_UPSTREAM_UNTAGGED_LINES = 200;
