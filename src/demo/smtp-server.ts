import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/**
 * A small SMTP submission server that accepts only SASL XOAUTH2 with a valid bearer token, over
 * implicit TLS or STARTTLS (built on smtp-server). It is the demo's "real server" and the fake
 * upstream of the integration tests: it stores what it accepts, records every login and command
 * line (AUTH payloads redacted by smtp-server), and can be told to refuse recipients or messages.
 */

export interface DemoSmtpServerOptions {
  tls: 'implicit' | 'starttls';
  cert: string | Buffer;
  key: string | Buffer;
  /** Whether `token` is a valid access token of `username`. */
  validateToken(username: string, token: string): boolean;
  host?: string;
  port?: number;
  /** Called with every accepted message (the demo delivers it to its IMAP mailbox). */
  onMessage?: ((message: ReceivedMessage) => void) | undefined;
}

export interface ReceivedMessage {
  /** Who logged in. */
  user: string;
  from: string;
  to: string[];
  /** The message as the server received it, dot-stuffing removed. */
  data: Buffer;
}

/** A login attempt: the mechanism and user; `accepted` false when the token was refused. */
export interface ReceivedAuth {
  method: string;
  username: string;
  accepted: boolean;
}

/** A refusal the server gives: the reply code and its text (several lines for a multi-line reply). */
export interface Refusal {
  code: number;
  text: string | string[];
}

export interface DemoSmtpServer {
  readonly port: number;
  readonly tls: 'implicit' | 'starttls';
  readonly messages: ReceivedMessage[];
  readonly auths: ReceivedAuth[];
  /** Client command lines as smtp-server logs them ("AUTH XOAUTH2 /* secured *\/", "MAIL FROM:<a@b>"). */
  readonly commands: string[];
  /** Recipients (lower case) refused at RCPT with the given reply. */
  readonly refuseRecipients: Map<string, Refusal>;
  /** When set, every message is refused after its final dot with this reply. */
  refuseData: Refusal | undefined;
  /** When false, accepted messages are counted and handed to onMessage but not kept here. */
  keepMessages: boolean;
  /** Messages accepted so far, kept or not. */
  readonly accepted: number;
  close(): Promise<void>;
}

export async function startDemoSmtpServer(options: DemoSmtpServerOptions): Promise<DemoSmtpServer> {
  const state = {
    messages: [] as ReceivedMessage[],
    auths: [] as ReceivedAuth[],
    commands: [] as string[],
    refuseRecipients: new Map<string, Refusal>(),
    refuseData: undefined as Refusal | undefined,
    keepMessages: true,
    accepted: 0,
  };
  // smtp-server's options extend tls.TlsOptions, which its declarations lose under our
  // tsconfig (no synthetic default imports); spread from a typed object instead.
  const tlsOptions: TlsOptions = { key: options.key, cert: options.cert };
  const server = new SMTPServer({
    ...tlsOptions,
    secure: options.tls === 'implicit',
    authMethods: ['XOAUTH2'],
    // Real submission servers send enhanced status codes (RFC 2034); so does this one.
    hideENHANCEDSTATUSCODES: false,
    size: 100 * 1024 * 1024,
    disableReverseLookup: true,
    logger: commandRecorder(state.commands),
    onAuth: (auth, _session, callback) => checkToken(auth, options, state.auths, callback),
    onRcptTo: (address, _session, callback) => {
      const refusal = state.refuseRecipients.get(address.address.toLowerCase());
      callback(refusal ? refusalError(refusal) : undefined);
    },
    onData: (stream, session, callback) => {
      receive(stream, session, state, options).then((err) => callback(err), (err: Error) => callback(err));
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  return Object.assign(state, {
    port,
    tls: options.tls,
    close: () => new Promise<void>((resolve) => {
      for (const connection of server.connections) connection.close();
      server.close(() => resolve());
    }),
  }) as DemoSmtpServer;
}

function checkToken(
  auth: SMTPServerAuthentication, options: DemoSmtpServerOptions, auths: ReceivedAuth[],
  callback: (err: Error | null | undefined, response?: { user?: string; data?: object }) => void,
): void {
  const username = auth.username ?? '';
  const accepted = auth.method === 'XOAUTH2' && options.validateToken(username, auth.accessToken ?? '');
  auths.push({ method: auth.method, username, accepted });
  if (accepted) return callback(null, { user: username });
  // Google's error challenge; the client answers it and then gets 535.
  callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } });
}

async function receive(
  stream: SMTPServerDataStream, session: SMTPServerSession, state: { messages: ReceivedMessage[]; refuseData: Refusal | undefined; keepMessages: boolean; accepted: number },
  options: DemoSmtpServerOptions,
): Promise<Error | undefined> {
  const chunks: Buffer[] = [];
  const collect = state.keepMessages || options.onMessage !== undefined;
  for await (const chunk of stream as AsyncIterable<Buffer>) if (collect) chunks.push(chunk);
  if (state.refuseData) return refusalError(state.refuseData);
  const message: ReceivedMessage = {
    user: String(session.user),
    from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
    to: session.envelope.rcptTo.map((r) => r.address),
    data: Buffer.concat(chunks),
  };
  state.accepted++;
  if (state.keepMessages) state.messages.push(message);
  options.onMessage?.(message);
  return undefined;
}

/**
 * smtp-server sends an array message as a multi-line reply; its types say string. Only this
 * fake needs that, to show that the proxy passes multi-line replies on.
 */
function refusalError(refusal: Refusal): Error {
  const error = Object.assign(new Error(), { responseCode: refusal.code });
  Object.defineProperty(error, 'message', { value: refusal.text });
  return error;
}

/** A bunyan-style logger that keeps the "C:" lines smtp-server logs for every client command. */
function commandRecorder(commands: string[]): Record<string, (...args: unknown[]) => void> {
  const ignore = (): void => undefined;
  return {
    trace: ignore, info: ignore, warn: ignore, error: ignore, fatal: ignore,
    debug: (...args: unknown[]) => {
      const [, format, line] = args;
      if (format === 'C:' && typeof line === 'string') commands.push(line);
    },
  };
}
