import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, createContext, disposeContext, type Context } from './readme/context.js';
import { extractShellCommands } from './readme/extract.js';
import { HANDLERS, findHandler } from './readme/handlers.js';

/**
 * Every command in the README's code blocks is run here for real (offline, against the demo and
 * its mock identity provider) or is one that a named CI step runs, and that step is checked to
 * be there. A command added to the README that nobody runs fails this test, so the README
 * cannot rot. Commands run in README order, in a scratch checkout (readme/context.ts).
 */

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const commands = extractShellCommands(README);
let ctx: Context;

beforeAll(() => {
  ctx = createContext();
});

afterAll(async () => {
  await disposeContext(ctx);
});

describe('README commands', () => {
  it('finds the commands of every install path and the demo', () => {
    const all = commands.map((c) => c.command);
    for (const expected of ['npm run demo', 'npm install -g .', 'docker compose up -d --build', 'sudo systemctl enable --now oauth-mail-proxy']) expect(all).toContain(expected);
  });

  it('has no handler that no README command uses (a stale entry would hide a missing check)', () => {
    const unused = HANDLERS.filter((h) => !commands.some((c) => h.match.test(c.command))).map((h) => h.name);
    expect(unused).toEqual([]);
  });

  for (const { command, line } of commands) {
    it(`README:${line} ${command}`, async () => {
      const handler = findHandler(command);
      expect(handler, `README line ${line}: nobody runs "${command}"; run it in test/integration/readme/handlers.ts or in a .ci/run step named there`).toBeDefined();
      for (const step of handler!.ci ?? []) {
        expect(readFileSync(join(REPO, step.file), 'utf8'), `${step.file} should run it (${step.why})`).toMatch(step.line);
      }
      await handler!.run?.(command, ctx);
    }, 60_000);
  }

  it('stops the demo on Ctrl-C (SIGINT) with exit 0', async () => {
    expect(ctx.demo, 'the README starts the demo').toBeDefined();
    const exited = once(ctx.demo!.process, 'exit');
    ctx.demo!.process.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    expect(code, ctx.demo!.output()).toBe(0);
  });
});

describe('the README command extractor', () => {
  const readme = (body: string) => `# x\n\n${body}\n`;

  it('reports a command no handler runs', () => {
    const [extra] = extractShellCommands(readme('```sh\noauth-mail-proxy frobnicate --now\n```'));
    expect(extra?.command).toBe('oauth-mail-proxy frobnicate --now');
    expect(findHandler(extra!.command)).toBeUndefined();
  });

  it('joins continuations, drops comments, splits && outside quotes, keeps pipes', () => {
    const found = extractShellCommands(readme([
      '```bash',
      'npm ci && npm test   # both',
      "printf 'a && b # c' | curl -s \\",
      '  --upload-file -',
      '```',
      '```yaml',
      'not: a command',
      '```',
    ].join('\n')));
    expect(found).toEqual([
      { command: 'npm ci', line: 4 },
      { command: 'npm test', line: 4 },
      { command: "printf 'a && b # c' | curl -s --upload-file -", line: 5 },
    ]);
  });

  it('refuses a fence that does not say what it holds', () => {
    expect(() => extractShellCommands(readme('```\nrm -rf /\n```'))).toThrow(/without a language/);
  });
});
