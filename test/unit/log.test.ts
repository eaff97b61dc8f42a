import { spawnSync } from 'node:child_process';
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

describe('the stdout log', () => {
  it('has every line written when the process is killed right after logging it', () => {
    // The built module (npm test builds first): a child process that logs and then dies by
    // SIGKILL, which runs no exit handler. A line handed to a thread pool would still be queued.
    const logModule = new URL('../../dist/log.js', import.meta.url).href;
    const script = `
      const { createLogger } = await import(${JSON.stringify(logModule)});
      const log = createLogger({ level: 'info', format: 'json' });
      for (let i = 0; i < 200; i++) log.info({ event: 'test.line', i }, 'line');
      process.kill(process.pid, 'SIGKILL');`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.signal).toBe('SIGKILL');
    const lines = child.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });
});
