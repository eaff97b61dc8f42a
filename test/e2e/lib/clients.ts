import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { e2eEnv, E2E_DIR } from './env.js';
import { run, runOk, type RunResult } from './run.js';

/**
 * Command lines for the client programs written by others: curl, fetchmail, msmtp, swaks.
 * Each gets its configuration the way its users write it (a fetchmailrc, an msmtprc).
 */

export type Tls = 'none' | 'starttls' | 'implicit';

/** A fresh folder for one client run (rc files, fetched messages). */
export function clientDir(label: string): string {
  return mkdtempSync(join(E2E_DIR, `clients-${label}-`));
}

/**
 * curl URL and TLS options: implicit TLS uses the "s" scheme, STARTTLS the plain scheme with
 * --ssl-reqd (curl then refuses to go on without TLS), none the plain scheme.
 */
export function curlTarget(scheme: 'imap' | 'pop3' | 'smtp', port: number, tls: Tls, path = ''): string[] {
  const env = e2eEnv();
  if (tls === 'implicit') return ['--cacert', env.caFile, `${scheme}s://localhost:${port}/${path}`];
  if (tls === 'starttls') return ['--ssl-reqd', '--cacert', env.caFile, `${scheme}://localhost:${port}/${path}`];
  return [`${scheme}://127.0.0.1:${port}/${path}`];
}

export function curl(args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return runOk('curl', ['-sS', '--max-time', String(Math.floor(timeoutMs / 1000)), ...args], { timeoutMs: timeoutMs + 5000 });
}

/** fetchmailrc string quoting: its lexer takes \\ and \xNN escapes, but no \" (6.4). */
function rcQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\x22')}"`;
}

export interface FetchmailOptions {
  protocol: 'imap' | 'pop3';
  port: number;
  tls: Tls;
  user: string;
  password: string;
}

/**
 * Runs fetchmail once (keep, fetchall: nothing is deleted) and returns the messages it
 * handed to its MDA, one Buffer each. Login: IMAP LOGIN or POP3 USER/PASS (`auth password`).
 */
export async function fetchmail(o: FetchmailOptions): Promise<{ messages: Buffer[]; result: RunResult }> {
  const env = e2eEnv();
  const dir = clientDir('fetchmail');
  const mda = join(dir, 'mda.sh');
  writeFileSync(mda, '#!/bin/sh\nexec cat > "$(mktemp "$0.msg.XXXXXX")"\n');
  chmodSync(mda, 0o755);
  const tls = o.tls === 'implicit'
    ? `ssl sslcertck sslcertfile ${rcQuote(env.caFile)}`
    : o.tls === 'starttls'
      ? `sslproto ${rcQuote('TLS1.2+')} sslcertck sslcertfile ${rcQuote(env.caFile)}`
      : 'sslproto ""';
  const rc = join(dir, 'fetchmailrc');
  writeFileSync(rc, `set no syslog
poll localhost protocol ${o.protocol} port ${o.port} auth password timeout 60
  user ${rcQuote(o.user)} password ${rcQuote(o.password)}
  ${tls}
  keep fetchall
  mda ${rcQuote(mda)}
`);
  chmodSync(rc, 0o600);
  const result = await run('fetchmail', ['-f', rc, '--nodetach', '-v', '--nosyslog', '-i', join(dir, 'fetchids')], {
    env: { FETCHMAILHOME: dir, HOME: dir },
    timeoutMs: 120_000,
  });
  const messages = readdirSync(dir).filter((f) => f.startsWith('mda.sh.msg.')).map((f) => readFileSync(join(dir, f)));
  return { messages, result };
}

export interface MsmtpOptions {
  port: number;
  tls: Tls;
  auth: 'plain' | 'login' | 'xoauth2' | 'oauthbearer';
  user: string;
  /** The password (or, for xoauth2/oauthbearer, the access token). */
  secret: string;
  from: string;
  to: string;
  message: string;
}

export async function msmtp(o: MsmtpOptions): Promise<RunResult> {
  const env = e2eEnv();
  const dir = clientDir('msmtp');
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, o.secret);
  const tls = o.tls === 'none' ? 'tls off' : `tls on\ntls_starttls ${o.tls === 'starttls' ? 'on' : 'off'}\ntls_trust_file ${env.caFile}`;
  const rc = join(dir, 'msmtprc');
  writeFileSync(rc, `account e2e
host localhost
port ${o.port}
${tls}
auth ${o.auth}
user ${o.user}
passwordeval cat ${secretFile}
from ${o.from}
account default : e2e
`);
  chmodSync(rc, 0o600);
  return run('msmtp', ['-C', rc, '--', o.to], { input: o.message, timeoutMs: 60_000 });
}

export interface SwaksOptions {
  port: number;
  tls: Tls;
  auth: 'PLAIN' | 'LOGIN';
  user: string;
  password: string;
  from: string;
  to: string;
  marker: string;
}

export async function swaks(o: SwaksOptions): Promise<RunResult> {
  const env = e2eEnv();
  const tls = o.tls === 'implicit' ? ['--tls-on-connect'] : o.tls === 'starttls' ? ['--tls'] : [];
  const verify = o.tls === 'none' ? [] : ['--tls-verify', '--tls-ca-path', env.caFile];
  return run('swaks', [
    '--server', `localhost:${o.port}`, ...tls, ...verify,
    '--auth', o.auth, '--auth-user', o.user, '--auth-password', o.password,
    '--from', o.from, '--to', o.to,
    '--header', `Subject: ${o.marker}`, '--header', `Message-ID: <${o.marker}@e2e.example.com>`,
    '--body', 'Sent by swaks through the e2e suite.',
    '--timeout', '60',
  ], { timeoutMs: 90_000 });
}
