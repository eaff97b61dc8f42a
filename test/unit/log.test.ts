import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, stream };
}

describe('secrets in logs', () => {
  it('a Secret prints as [redacted] however it is turned into text', () => {
    const s = new Secret('hunter2');
    expect(String(s)).toBe('[redacted]');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2');
  });

  it('pino redacts secret-looking fields even when they hold plain strings', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'trace', destination: stream });
    log.debug({ password: 'p1', token: 't1', refresh_token: 'r1', client_secret: 'c1', nested: { accessToken: 'a1', payload: 'x1' } }, 'hello');
    log.info({ event: 'auth.ok', secret: new Secret('s1') }, 'with a Secret');
    const text = lines.join('');
    for (const leaked of ['p1', 't1', 'r1', 'c1', 'a1', 'x1', 's1']) expect(text).not.toContain(`"${leaked}"`);
    expect(text).toContain('[redacted]');
    expect(lines).toHaveLength(2);
  });
});
