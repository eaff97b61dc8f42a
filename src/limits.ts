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
/** A token is refreshed when it has less than this left. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** Background refresh fires this long before the margin is reached, to spread load. */
export const BACKGROUND_REFRESH_LEAD_MS = 60_000;
/** After a temporary refresh failure, the background refresher waits this long (doubled each time). */
export const BACKGROUND_RETRY_MIN_MS = 30_000;
export const BACKGROUND_RETRY_MAX_MS = 10 * 60_000;
/** A `command` token provider must finish within this. */
export const TOKEN_COMMAND_TIMEOUT_MS = 30_000;
/** Largest output accepted from a `command` token provider. */
export const MAX_TOKEN_COMMAND_OUTPUT_BYTES = 64 * 1024;
/** Default connection caps per listener and per client address. */
export const MAX_CONNECTIONS_PER_LISTENER = 1000;
export const MAX_CONNECTIONS_PER_ADDRESS = 50;
/** Grace period for sessions on SIGTERM before they are closed. */
export const SHUTDOWN_DEADLINE_MS = 10_000;
