import { spawn } from 'node:child_process';

/** Runs a client program to completion with a deadline; never throws for a non-zero exit. */

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Raw stdout, for byte-exact comparisons. */
  stdoutBytes: Buffer;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  timeoutMs?: number;
  cwd?: string;
}

export async function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const child = spawn(cmd, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    cwd: options.cwd,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? 60_000;
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: no exit within ${timeoutMs} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (c) => { clearTimeout(timer); resolve(c); });
  });
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes };
}

/** Like run, but a non-zero exit is an error that shows what the client said. */
export async function runOk(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) {
    throw new Error(`${cmd} exited ${r.code}\nstdout: ${r.stdout.slice(0, 4000)}\nstderr: ${r.stderr.slice(0, 4000)}`);
  }
  return r;
}

/** A python3 client script in test/e2e/clients, given one JSON argument, answering one JSON line. */
export async function runPython<T>(script: string, request: unknown, timeoutMs = 120_000): Promise<T> {
  const path = new URL(`../clients/${script}`, import.meta.url).pathname;
  const r = await run('python3', [path], { input: JSON.stringify(request), timeoutMs });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let parsed: T;
  try {
    parsed = JSON.parse(last) as T;
  } catch {
    throw new Error(`${script} exited ${r.code} without a JSON answer\nstdout: ${r.stdout.slice(0, 4000)}\nstderr: ${r.stderr.slice(0, 4000)}`);
  }
  return parsed;
}
