import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { parse } from 'yaml';
import { WireClient } from '../fakes/imap-wire-client.js';

/**
 * The secret scan every integration test file gets (issue 8, point 7): harness.ts hands each
 * proxy it starts to `watchProxy`, and after the file's tests every log line of every such proxy
 * is searched for every secret its config holds (passwords, client secrets, refresh and access
 * tokens, bearer tokens, inline or behind *_file), for every token the mock identity provider
 * mints (TOKEN_PATTERN), and for the SASL payloads those would travel in. Every line a test
 * client received from the proxy (wire transcripts) is searched for tokens and client secrets:
 * error messages sent to clients never carry them. Any hit fails the file.
 */

/** Tokens issued by the mock identity provider and the fixtures have these shapes. */
export const TOKEN_PATTERN = /\b(at|rt)_[A-Za-z0-9_-]{20,}/;

const SECRET_KEYS = new Set(['password', 'client_secret', 'refresh_token', 'access_token', 'bearer_token']);
/** Shorter values would match innocent text by chance. */
const MIN_SECRET_LENGTH = 6;

interface Watched {
  logs: string[];
  secrets: Set<string>;
}

const watched: Watched[] = [];
const transcripts: { text: string }[] = [];

/** Values under secret keys of a config file, *_file ones read from disk. */
export function secretsOfConfig(configPath: string): Set<string> {
  const found = new Set<string>();
  const base = dirname(configPath);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (typeof value === 'string' && SECRET_KEYS.has(key)) found.add(value);
      else if (typeof value === 'string' && key.endsWith('_file') && SECRET_KEYS.has(key.slice(0, -5))) {
        try {
          found.add(readFileSync(isAbsolute(value) ? value : join(base, value), 'utf8').trim());
        } catch {
          // a missing file is the test's business
        }
      } else visit(value);
    }
  };
  visit(parse(readFileSync(configPath, 'utf8')));
  return new Set([...found].filter((s) => s.length >= MIN_SECRET_LENGTH));
}

export function watchProxy(logs: string[], configPath: string): void {
  watched.push({ logs, secrets: secretsOfConfig(configPath) });
}

/** A test client's record of what it received; searched after the file. */
export function watchTranscript(): { text: string } {
  const t = { text: '' };
  transcripts.push(t);
  return t;
}

/** The secret, its base64, and base64 of the PLAIN/XOAUTH2 payloads it would sit in (any alignment). */
function forms(secret: string): string[] {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  // A substring of a base64 payload only matches when aligned: try all three alignments.
  const aligned = [0, 1, 2].map((pad) => b64(`${'\0'.repeat(pad)}${secret}`).slice(Math.ceil((pad * 4) / 3) + 1, -4)).filter((s) => s.length >= 8);
  return [secret, ...aligned];
}

export function findLeaks(text: string, secrets: Iterable<string>): string[] {
  const leaks: string[] = [];
  const token = TOKEN_PATTERN.exec(text);
  if (token) leaks.push(`a token (${token[0].slice(0, 6)}...)`);
  for (const secret of secrets) {
    if (forms(secret).some((f) => text.includes(f))) leaks.push(`a configured secret (${secret.length} characters, starting ${JSON.stringify(secret.slice(0, 2))})`);
  }
  return leaks;
}

WireClient.transcriptSink = watchTranscript;

afterAll(() => {
  const allSecrets = new Set(watched.flatMap((w) => [...w.secrets]));
  for (const w of watched) expect(findLeaks(w.logs.join('\n'), w.secrets), 'secrets in the proxy log').toEqual([]);
  for (const t of transcripts) expect(findLeaks(t.text, allSecrets), 'secrets sent to a client').toEqual([]);
});
