// Chooses and starts the benchmark's upstream: the real Dovecot and Postfix of the end-to-end
// setup (test/e2e/servers/up.sh) when they are up, else the in-process fakes in a child process.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FAKE = fileURLToPath(new URL('./fake-upstream.mjs', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

/**
 * @param {'auto' | 'fake' | 'e2e'} choice
 * @param {string} dir work folder
 */
export async function startUpstream(choice, dir) {
  if (choice !== 'fake') {
    const e2e = await e2eUpstream();
    if (e2e.ok) return e2e.upstream;
    if (choice === 'e2e') throw new Error(`the end-to-end servers are not usable: ${e2e.why}`);
    const fake = await startFakeUpstream(dir);
    fake.note = `the end-to-end servers were not used: ${e2e.why}`;
    return fake;
  }
  return startFakeUpstream(dir);
}

async function startFakeUpstream(dir) {
  const child = fork(FAKE, [dir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
  const [message] = await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`the fake upstream exited (${code}) before it was ready`);
    }),
  ]);
  clearTimeout(timer);
  return {
    ...message,
    // The fake IdP does not rotate refresh tokens: every proxy may start from the same one.
    newRefreshToken: async () => message.refreshToken,
    ca: readFileSync(message.caFile),
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.send({ type: 'stop' });
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
    },
  };
}

/** Reads $E2E_DIR/ports.env (written by up.sh once everything answered) and checks the ports. */
async function e2eUpstream() {
  const dir = process.env.E2E_DIR ?? '/tmp/omp-e2e';
  const envFile = join(dir, 'ports.env');
  if (!existsSync(envFile)) return { ok: false, why: `${envFile} does not exist (run test/e2e/servers/up.sh as root)` };
  const env = parseEnvFile(readFileSync(envFile, 'utf8'));
  const ports = ['E2E_IMAPS_PORT', 'E2E_POP3S_PORT', 'E2E_SUBMISSION_PORT'].map((k) => Number(env[k]));
  for (const port of ports) {
    if (!(await answers(port))) return { ok: false, why: `nothing answers on 127.0.0.1:${port} (run test/e2e/servers/up.sh)` };
  }
  const control = env.E2E_IDP_CONTROL_URL;
  const user = (env.E2E_USERS ?? '').split(' ')[0];
  const post = async (path, body) => {
    const res = await fetch(`${control}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${control}${path}: HTTP ${res.status}`);
    return res.json();
  };
  const { refresh_token: refreshToken } = await post('/refresh-token', { username: user });
  const { access_token: accessToken } = await post('/access-token', { username: user });
  // Mail sent by the SMTP measurement goes to the last user, never to the one being read.
  const recipients = (env.E2E_USERS ?? '').split(' ');
  return {
    ok: true,
    upstream: {
      kind: 'e2e',
      description: `the end-to-end servers (Dovecot and Postfix from test/e2e/servers/up.sh, ${dir})`,
      user,
      smtpRecipient: recipients[recipients.length - 1],
      caFile: env.E2E_CA_FILE,
      ca: readFileSync(env.E2E_CA_FILE),
      tokenUrl: env.E2E_IDP_TOKEN_URL,
      clientId: env.E2E_CLIENT_ID,
      clientSecret: env.E2E_CLIENT_SECRET,
      controlUrl: control,
      refreshToken,
      accessToken,
      // The e2e IdP rotates refresh tokens: each proxy gets its own first one.
      newRefreshToken: async () => (await post('/refresh-token', { username: user })).refresh_token,
      accessTokenFor: async (username) => (await post('/access-token', { username })).access_token,
      pid: undefined,
      servers: {
        imap: { port: Number(env.E2E_IMAPS_PORT), tls: 'implicit' },
        pop3: { port: Number(env.E2E_POP3S_PORT), tls: 'implicit' },
        smtp: { port: Number(env.E2E_SUBMISSION_PORT), tls: 'starttls' },
      },
      // Postfix's implicit-TLS submission port (RFC 8314), for bench/pipe-floor.mjs.
      smtpImplicitTlsPort: Number(env.E2E_SUBMISSIONS_PORT) || undefined,
      async stop() {},
    },
  };
}

function parseEnvFile(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

function answers(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
