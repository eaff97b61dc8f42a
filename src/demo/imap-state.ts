import type { SecureContext } from 'node:tls';
import type { ImapConnection } from './imap-connection.js';
import type { DemoMailStore, MailboxView } from './imap-mailbox.js';

/** The OAuth SASL mechanisms the demo server can offer. */
export type DemoMechanism = 'XOAUTH2' | 'OAUTHBEARER';

/** Options of startDemoImapServer. */
export interface DemoImapServerOptions {
  /**
   * `implicit`: TLS from the first byte (port 993 style). `starttls`: plaintext with STARTTLS and
   * LOGINDISABLED, no AUTHENTICATE before TLS. `none`: plaintext throughout, for tests only.
   */
  tls: 'implicit' | 'starttls' | 'none';
  /** PEM certificate chain and key; required unless `tls` is `none`. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default 127.0.0.1 and an ephemeral port. */
  host?: string;
  port?: number;
  /** Decides whether `token` is a valid access token for `username`. A throw counts as a refusal. */
  validateToken: (username: string, token: string) => Promise<boolean> | boolean;
  /** Offered SASL mechanisms, default both. */
  mechanisms?: DemoMechanism[];
  /** Initial INBOX content per user, as raw RFC 5322 messages. */
  mailboxes?: Record<string, Array<Buffer | string>>;
  /** Replaces the capability list sent after login (default: see DEFAULT_CAPABILITIES_AFTER_LOGIN). */
  capabilitiesAfterLogin?: string[];
  /**
   * Test hook: bytes written right behind the STARTTLS tagged OK, in the same write, as a
   * man in the middle would inject them. A correct client discards them.
   */
  injectAfterStarttls?: string;
}

/** What the server has seen, for assertions in tests. Never holds a token. */
export interface DemoImapStats {
  /** TCP connections accepted, including those whose TLS handshake failed. */
  connections: number;
  /** Sessions currently open. */
  openConnections: number;
  successfulLogins: number;
  /** Refused AUTHENTICATE exchanges and LOGIN attempts. */
  failedLogins: number;
  lastUser: string | undefined;
  /** The mechanism of the last AUTHENTICATE exactly as the client typed it. */
  lastMechanism: string | undefined;
  /** Every AUTHENTICATE: mechanism as typed, user, outcome, and whether SASL-IR was used. */
  authentications: Array<{ mechanism: string; user: string; ok: boolean; initialResponse: boolean }>;
  /** Command verbs in arrival order over all sessions (`UID FETCH` for UID commands). */
  commands: string[];
  /** Bytes pipelined behind STARTTLS and thrown away (RFC 3501 section 6.2.1). */
  starttlsDiscardedBytes: number;
}

/** Shared by all sessions of one server. */
export interface ServerContext {
  readonly options: DemoImapServerOptions;
  readonly mechanisms: readonly DemoMechanism[];
  readonly capabilitiesAfterLogin: readonly string[];
  readonly secureContext: SecureContext | undefined;
  readonly stats: DemoImapStats;
  readonly store: DemoMailStore;
  /** Token validations still to be refused regardless of validateToken. */
  failNext: number;
}

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** One client's session. */
export interface Session {
  readonly ctx: ServerContext;
  readonly conn: ImapConnection;
  state: SessionState;
  user: string | undefined;
  view: MailboxView | undefined;
  readOnly: boolean;
}

export const DEFAULT_CAPABILITIES_AFTER_LOGIN: readonly string[] = [
  'IMAP4rev1', 'LITERAL+', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE', 'UNSELECT', 'CHILDREN', 'X-DEMO-POSTLOGIN',
];

/** The capability list for the session's current state (RFC 3501 section 7.2.1). */
export function capabilities(s: Session): string {
  if (s.state !== 'not-authenticated') return s.ctx.capabilitiesAfterLogin.join(' ');
  const caps = ['IMAP4rev1', 'LITERAL+', 'SASL-IR', 'ID', 'ENABLE', 'IDLE', 'NAMESPACE'];
  if (plaintextBeforeStarttls(s)) return [...caps, 'STARTTLS', 'LOGINDISABLED'].join(' ');
  return [...caps, ...s.ctx.mechanisms.map((mechanism) => `AUTH=${mechanism}`)].join(' ');
}

/** True while a STARTTLS-mode session is still plaintext: no authentication is allowed yet. */
export function plaintextBeforeStarttls(s: Session): boolean {
  return s.ctx.options.tls === 'starttls' && !s.conn.secure;
}
