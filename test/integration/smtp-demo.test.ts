import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { CLI, TOKEN_PATTERN } from './harness.js';

const exec = promisify(execFile);

it('demo: the printed SMTP command sends through the proxy, and the message is then read over IMAP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'omp-demo-smtp-'));
  const child = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--port', '0', '--pop3-port', '0', '--smtp-port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    for (let i = 0; i < 300 && !/INBOX;UID=3'\n/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    const send = /^ {2}(printf .* --upload-file -)$/m.exec(out);
    const read = /curl -s --user (\S+) '(imap:\/\/[^']+;UID=3)'/.exec(out);
    expect(send, out).not.toBeNull();
    expect(read, out).not.toBeNull();
    await exec('sh', ['-c', send![1]!], { timeout: 20_000 });
    const { stdout } = await exec('curl', ['-s', '--user', read![1]!, read![2]!], { timeout: 20_000 });
    expect(stdout).toContain('Subject: sent through the proxy');
    expect(stdout).toContain('Hello.');
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  expect(out).not.toMatch(TOKEN_PATTERN);
  expect(out).toContain("SMTP session ended: sent");
});
