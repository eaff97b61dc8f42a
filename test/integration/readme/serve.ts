import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { expect } from 'vitest';
import { sh, type Context } from './context.js';

/**
 * Runs the README's `serve` command, fetches a message through its IMAP listener with curl as
 * the demo's commands do, stops it with SIGTERM and expects exit 0. Returns what curl fetched.
 */
export async function serveAndFetch(ctx: Context, command: string): Promise<string> {
  const child = spawn('sh', ['-c', `exec ${command}`], { cwd: ctx.checkout, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const imapPort = new Promise<number>((done, failed) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const start = output.split('\n').find((l) => l.includes('"event":"listener.start"') && l.includes('"protocol":"imap"'));
      if (start) done((JSON.parse(start) as { port: number }).port);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => failed(new Error(`serve exited with ${code}:\n${output}`)));
  });
  try {
    const port = await imapPort;
    const fetched = await sh(ctx, `curl -s --user demo@example.com:demo-password 'imap://127.0.0.1:${port}/INBOX;UID=1'`);
    expect(fetched.code, fetched.stderr).toBe(0);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code, output).toBe(0);
    return fetched.stdout;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
