import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { inject, it } from 'vitest';

/**
 * The client matrix: every test that drives a real client declares its row (client, protocol,
 * login method, TLS toward the proxy, TLS toward the server) and the outcome is appended to a
 * JSON-lines file of the run. The global teardown prints the table and writes
 * docs/compatibility.md (global-setup.ts).
 */

export type Path = 'proxy' | 'direct';

export interface MatrixRow {
  /** proxy: client -> oauth-mail-proxy -> server; direct: client -> server (fixture check). */
  path: Path;
  client: string;
  protocol: 'IMAP' | 'POP3' | 'SMTP';
  /** What the client does to log in (to the proxy, or to the server for direct rows). */
  login: string;
  /** TLS between client and proxy (or server, for direct rows): none | STARTTLS | implicit. */
  clientTls: string;
  /** TLS between proxy and server; "-" for direct rows. */
  serverTls: string;
  /** What the test checks on the server side. */
  checks: string;
}

export interface MatrixRecord extends MatrixRow {
  file: string;
  result: 'pass' | 'fail' | 'skipped';
  note?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    e2eMatrixFile: string;
  }
}

function record(row: MatrixRow, result: MatrixRecord['result'], file: string, note?: string): void {
  const entry: MatrixRecord = { ...row, file, result, ...(note ? { note } : {}) };
  appendFileSync(inject('e2eMatrixFile'), `${JSON.stringify(entry)}\n`);
}

export function rowTitle(row: MatrixRow): string {
  const tls = row.path === 'proxy' ? `${row.clientTls} -> proxy -> ${row.serverTls}` : `${row.clientTls}, direct`;
  return `${row.client} ${row.protocol} ${row.login} (${tls}): ${row.checks}`;
}

/** An `it` that records its matrix row with its outcome. */
export function matrixIt(file: string, row: MatrixRow, fn: () => Promise<void>, timeoutMs?: number): void {
  const name = basename(file);
  it(rowTitle(row), async () => {
    try {
      await fn();
    } catch (err) {
      record(row, 'fail', name);
      throw err;
    }
    record(row, 'pass', name);
  }, timeoutMs);
}

export function readMatrix(path: string): MatrixRecord[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MatrixRecord);
}

const PROTOCOL_ORDER = { IMAP: 0, POP3: 1, SMTP: 2 } as const;
const TLS_ORDER = ['none', 'STARTTLS', 'implicit'];

/** Protocol, client, login method, then TLS in the order none, STARTTLS, implicit. */
export function sortMatrix(rows: MatrixRecord[]): MatrixRecord[] {
  const tls = (label: string) => {
    const i = TLS_ORDER.findIndex((t) => label.startsWith(t));
    return i < 0 ? TLS_ORDER.length : i;
  };
  return [...rows].sort((a, b) =>
    PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol]
    || a.client.localeCompare(b.client)
    || a.login.localeCompare(b.login)
    || tls(a.clientTls) - tls(b.clientTls)
    || tls(a.serverTls) - tls(b.serverTls)
    || a.serverTls.localeCompare(b.serverTls)
    || a.checks.localeCompare(b.checks));
}

/** A Markdown table (it also reads well on a terminal). */
export function matrixTable(rows: MatrixRecord[], path: Path): string {
  const head = path === 'proxy'
    ? ['Client', 'Protocol', 'Login to the proxy', 'Client TLS', 'Proxy to server', 'Checked on the server side', 'Result']
    : ['Client', 'Protocol', 'Login to the server', 'TLS', 'Checked', 'Result'];
  const body = sortMatrix(rows.filter((r) => r.path === path)).map((r) => {
    const result = r.result === 'skipped' ? `skipped (${r.note ?? ''})` : r.result;
    return path === 'proxy'
      ? [r.client, r.protocol, r.login, r.clientTls, r.serverTls, r.checks, result]
      : [r.client, r.protocol, r.login, r.clientTls, r.checks, result];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
