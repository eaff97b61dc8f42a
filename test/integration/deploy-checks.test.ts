import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLOSE_LINGER_MS, SHUTDOWN_DEADLINE_MS } from '../../src/limits.js';

/**
 * The checks .ci/run applies to the deployment files that CI cannot run (no Docker engine, no
 * systemd): they pass on the files in the repo and fail on deliberately broken copies, so that
 * a broken docker-compose.yml or unit file fails CI.
 */

const exec = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const COMPOSE = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');
const UNIT = readFileSync(join(REPO, 'deploy/oauth-mail-proxy.service'), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'deploy-checks-'));

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function check(script: string, file: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await exec('bash', [join(REPO, 'scripts', script), file], { cwd: REPO });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Writes `text` after replacing `from` (which must occur) with `to`. */
function brokenCopy(name: string, text: string, from: string | RegExp, to: string): string {
  const broken = text.replace(from, to);
  expect(broken, `${String(from)} not found: the test no longer breaks anything`).not.toBe(text);
  const path = join(scratch, name);
  writeFileSync(path, broken);
  return path;
}

describe('docker-compose.yml check (scripts/check-compose.sh)', () => {
  it('passes on the repo file and names its services', async () => {
    const { code, output } = await check('check-compose.sh', join(REPO, 'docker-compose.yml'));
    expect(output).toContain('mail-proxy legacy-app');
    expect(code).toBe(0);
  });

  const breakages: [string, string | RegExp, string, RegExp][] = [
    ['a depends_on naming a missing service', /- mail-proxy\n/, '- mail-prox\n', /depends on service 'mail-prox' which is undefined/],
    ['an undeclared named volume', 'tokens:/data', 'token-store:/data', /Named volume "token-store:\/data:rw" is used .* but no declaration was found/],
    ['a key compose does not know', 'restart: unless-stopped', 'restart: unless-stopped\n    volume:\n      - x:/y', /Unsupported config option for services.mail-proxy: 'volume'/],
    ['a malformed port', /# ports:\n {4}# {3}- "1143:1143"/, 'ports:\n      - "1143:1143:1143:1143"', /invalid ports:\n.*1143:1143:1143:1143/],
    ['a published port out of range', /# ports:\n {4}# {3}- "1143:1143"/, 'ports:\n      - "127.0.0.1:99999:1143"', /invalid ports:\n.*99999/],
    ['broken YAML', 'services:\n  mail-proxy:', 'services:\n  mail-proxy:\n bad', /while parsing|mapping values|expected/],
    ['an unset variable without a default (a warning)', '${GOOGLE_CLIENT_SECRET:-}', '${OMP_TEST_SURELY_UNSET_VARIABLE}', /OMP_TEST_SURELY_UNSET_VARIABLE variable is not set/],
  ];
  for (const [what, from, to, message] of breakages) {
    it(`fails on ${what}`, async () => {
      const { code, output } = await check('check-compose.sh', brokenCopy(`compose-${what.replace(/\W+/g, '-')}.yml`, COMPOSE, from, to));
      expect(output).toMatch(message);
      expect(code).not.toBe(0);
    });
  }
});

describe('docker-compose.yml and the Dockerfile agree', () => {
  it('mounts the config folder CMD reads and a named volume on the image\'s VOLUME', () => {
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(dockerfile)![1]!) as string[];
    const configDir = cmd[cmd.indexOf('-c') + 1]!.replace(/\/[^/]+$/, '');
    const volume = (JSON.parse(/^VOLUME (.*)$/m.exec(dockerfile)![1]!) as string[])[0];
    const compose = parse(COMPOSE) as { services: Record<string, { volumes?: string[] }>; volumes: Record<string, unknown> };
    const mounts = (compose.services['mail-proxy']!.volumes ?? []).map((v) => v.split(':'));
    expect(mounts).toContainEqual(['./config', configDir, 'ro']);
    const tokens = mounts.find(([, target]) => target === volume);
    expect(tokens, `a mount on ${volume}`).toBeDefined();
    expect(Object.keys(compose.volumes)).toContain(tokens![0]);
  });
});

describe('stopping gives the proxy time for its goodbyes', () => {
  // SIGTERM: sessions get the shutdown deadline, then a goodbye that may take CLOSE_LINGER_MS.
  const needed = (SHUTDOWN_DEADLINE_MS + CLOSE_LINGER_MS) / 1000;

  it('docker-compose.yml waits longer than that before SIGKILL (Docker\'s default is 10 s)', () => {
    const compose = parse(COMPOSE) as { services: Record<string, { stop_grace_period?: string }> };
    const grace = /^(\d+)s$/.exec(compose.services['mail-proxy']?.stop_grace_period ?? '');
    expect(Number(grace?.[1] ?? 10)).toBeGreaterThan(needed);
  });

  it('so does the systemd unit', () => {
    expect(Number(/^TimeoutStopSec=(\d+)$/m.exec(UNIT)?.[1] ?? 90)).toBeGreaterThan(needed);
  });
});

describe('systemd unit check (scripts/check-systemd-unit.sh)', () => {
  it('passes on deploy/oauth-mail-proxy.service', async () => {
    const { code, output } = await check('check-systemd-unit.sh', join(REPO, 'deploy/oauth-mail-proxy.service'));
    expect(output).toContain('ok');
    expect(code).toBe(0);
  });

  const breakages: [string, string | RegExp, string, RegExp][] = [
    ['a sandboxing value systemd would ignore', 'ProtectSystem=strict', 'ProtectSystem=stricter', /protect system value/i],
    ['an unknown key', 'DynamicUser=yes', 'DynamicUsers=yes', /Unknown key 'DynamicUsers'/],
    ['ExecStart names a missing program', 'ExecStart=/usr/bin/node ', 'ExecStart=/usr/bin/no-such-node ', /no-such-node is not executable/],
  ];
  for (const [what, from, to, message] of breakages) {
    it(`fails on ${what}`, async () => {
      const { code, output } = await check('check-systemd-unit.sh', brokenCopy(`unit-${what.replace(/\W+/g, '-')}.service`, UNIT, from, to));
      expect(output).toMatch(message);
      expect(code).not.toBe(0);
    });
  }
});
