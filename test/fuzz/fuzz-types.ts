import type { SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Authenticator, ClientInfo } from '../../src/accounts/types.js';
import type { ListenerConfig, Protocol } from '../../src/config/schema.js';
import type { TokenManager } from '../../src/tokens/types.js';

/** What the session fuzzer works with (session-rig.ts runs it, checks.ts judges it). */

export const FUZZ_USER = 'fuzz@example.com';
/** Contains a space and a quote, so it can never be a tag or atom echoed back innocently. */
export const FUZZ_PASSWORD = 'Fz "pw" \\ sécret';
export const FUZZ_TOKEN = 'at_fuzz_token_never_shown_to_clients';

export interface FuzzServices {
  listener: ListenerConfig;
  accounts: Authenticator;
  tokens: TokenManager;
  log: Logger;
  shutdown: AbortSignal;
  tlsContext?: SecureContext | undefined;
}

/** One protocol as the fuzzer sees it. */
export interface FuzzTarget {
  protocol: Protocol;
  /** Runs one session on an accepted socket (the protocol's connection handler). */
  serve(socket: Socket, client: ClientInfo, services: FuzzServices): Promise<void>;
  /** True when the server's lines include the protocol's goodbye (IMAP `* BYE`, POP3 `-ERR`/`+OK` at QUIT, SMTP 421/221). */
  saidGoodbye(lines: readonly string[]): boolean;
}

export type EndMode = 'end' | 'destroy' | 'stay';

export interface Transcript {
  /** Every byte the server sent. */
  received: Buffer;
  lines: string[];
  /** The handler's promise: undefined when it resolved. */
  rejected?: unknown;
  /** From the client's last write to the server's close (ms). */
  closeMs: number;
  closedByServer: boolean;
  authCalls: { username: string; password: string; ok: boolean }[];
  tokenCalls: { username: string; password?: string | undefined }[];
  /**
   * Connections the mail server accepted and token requests made, since the rig started. Counted
   * cumulatively because an accept can lag behind an aborted session into the next case; the
   * totals are exact: the first can never exceed the second.
   */
  upstreamConnectionsTotal: number;
  tokenCallsTotal: number;
  logRecords: Record<string, unknown>[];
  logText: string;
}
