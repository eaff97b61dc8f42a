import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the bench, without types
import { PROXY_NODE_FLAGS } from '../../../bench/lib/proxy.mjs';

const read = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

/** The flags between `node` and the script in a command line. */
function flagsBefore(script: RegExp, words: readonly string[]): string[] {
  const at = words.findIndex((w) => script.test(w));
  expect(at, `${words.join(' ')} runs the CLI`).toBeGreaterThan(0);
  return words.slice(1, at);
}

// The image and the unit pass node the same flags (the heap sizes of docs/decisions.md),
// and the bench starts the proxy the same way.
describe('node flags of the proxy', () => {
  const expected = PROXY_NODE_FLAGS as string[];

  it('are set at all', () => {
    expect(expected).toContain('--max-semi-space-size=2');
    expect(expected).toContain('--initial-old-space-size=64');
  });

  it("leave the CLI's shebang plain: busybox env (Alpine) has no -S", () => {
    expect(read('src/cli.ts').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
  });

  it("are the Dockerfile's ENTRYPOINT", () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'));
    expect(entrypoint).not.toBeNull();
    expect(flagsBefore(/cli\.js$/, JSON.parse(entrypoint![1]!) as string[])).toEqual(expected);
  });

  it("are the systemd unit's ExecStart", () => {
    const execStart = /^ExecStart=(.*)$/m.exec(read('deploy/oauth-mail-proxy.service'));
    expect(execStart).not.toBeNull();
    expect(flagsBefore(/cli\.js$/, execStart![1]!.split(' '))).toEqual(expected);
  });
});
