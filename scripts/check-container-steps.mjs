#!/usr/bin/env node
// Runs the Dockerfile's steps outside Docker, because CI has no Docker engine (issue 9).
//
// Each stage is emulated in a clean folder standing for the container's `/`: its COPYs copy
// exactly what the Dockerfile names, its RUN commands run for real where they can (npm ci,
// npm run build, scripts/container/install-runtime.sh, mkdir) and are otherwise checked or
// named (scripts/lib/dockerfile.mjs); an instruction or command it does not know fails the
// check. Then the runtime stage is started as the image would start it: ENTRYPOINT + CMD, as
// the `node` user (uid 1000), in the WORKDIR, with the image's ENV, in a network namespace of
// its own (as a container has; nothing else may hold its ports), with the config "mounted"
// read-only where CMD expects it. Docker's HEALTHCHECK command must fail before the proxy
// listens, pass while it runs, and fail after SIGTERM, which must end the proxy with exit 0.
//
// The mounted config is config.example.yaml with exactly the edits the README's Docker section
// asks for: listeners on 0.0.0.0 (reachable from other containers) and the token store on the
// image's VOLUME. Its secrets are placeholders: each ${VAR} set in the environment, as
// docker-compose.yml passes them, and each *_file written beside the config. No network is
// reachable from the namespace, so this also proves the example starts offline.
//
// Needs root (unshare, nsenter, setpriv; .ci/run runs as root). Exits non-zero on any failure
// and always removes its folder and processes.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDocument } from 'yaml';
import { classifyRun, isDockerIgnored, parseDockerfile, parseExecForm, parseHealthcheck } from './lib/dockerfile.mjs';

const REPO = resolve(import.meta.dirname, '..');
/** The `node` user of the official node images. */
const NODE_USER = { name: 'node', uid: 1000, gid: 1000 };
const STOP_DEADLINE_MS = 30_000;
const LOG_WAIT_MS = 10_000;
const PLACEHOLDER = 'placeholder-not-a-secret';

const say = (msg) => process.stdout.write(`container-steps: ${msg}\n`);
const fail = (msg) => { throw new Error(msg); };

/** A stage's state while its instructions run; `root` is the host folder standing for `/`. */
function newStage(root, name) {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  return { root, name, workdir: '/', env: {}, user: undefined, volumes: [], expose: [], healthcheck: undefined, entrypoint: [], cmd: [] };
}

/** A container path as a host path: absolute ones under the stage root, relative ones under WORKDIR. */
function hostPath(stage, path) {
  return isAbsolute(path) ? join(stage.root, path) : join(stage.root, stage.workdir, path);
}

/**
 * Maps the absolute container paths in a command line to host paths; `node`, flags etc. stay.
 * In a RUN line every absolute path is the container's; elsewhere only those under a folder
 * the emulated stage has (so that e.g. /usr/bin/env would stay the host's).
 */
function mapArgs(stage, args, { all = false } = {}) {
  return args.map((a) => (isAbsolute(a) && (all || existsSync(join(stage.root, a.split('/')[1] ?? ''))) ? join(stage.root, a) : a));
}

function copy(stage, args, stages, where) {
  const words = args.split(/\s+/);
  const from = words[0]?.startsWith('--from=') ? words.shift().slice('--from='.length) : undefined;
  if (words.some((w) => w.startsWith('--'))) fail(`${where}: COPY option ${words.find((w) => w.startsWith('--'))} is not emulated`);
  const dest = words.pop();
  const fromStage = from === undefined ? undefined : stages.get(from) ?? fail(`${where}: no stage named ${from}`);
  const ignore = existsSync(join(REPO, '.dockerignore')) ? readFileSync(join(REPO, '.dockerignore'), 'utf8') : '';
  for (const source of words) {
    if (!fromStage && isDockerIgnored(ignore, source)) fail(`${where}: COPY ${source}, but .dockerignore keeps it out of the build context`);
    const src = fromStage ? join(fromStage.root, source) : join(REPO, source);
    if (!existsSync(src)) fail(`${where}: COPY source ${source} does not exist (${src})`);
    const intoFolder = dest.endsWith('/') || words.length > 1 || statSync(src).isDirectory();
    const target = statSync(src).isDirectory() || !intoFolder ? hostPath(stage, dest) : join(hostPath(stage, dest), basename(source));
    mkdirSync(statSync(src).isDirectory() ? target : dirname(target), { recursive: true });
    cpSync(src, target, { recursive: true });
  }
}

function run(stage, args, where) {
  const cwd = hostPath(stage, stage.workdir);
  for (const step of classifyRun(args, where)) {
    if (step.kind === 'exec') {
      const [file, ...rest] = mapArgs(stage, step.command.split(/\s+/), { all: true });
      say(`RUN ${step.command}`);
      const result = spawnSync(file, rest, { cwd, env: { ...process.env, ...stage.env }, stdio: 'inherit' });
      if (result.status !== 0) fail(`${where}: RUN ${step.command} exited ${result.status ?? result.signal}`);
    } else if (step.kind === 'installed') {
      for (const pkg of step.match[1].split(' ')) {
        if (spawnSync('dpkg', ['-s', pkg], { stdio: 'ignore' }).status !== 0) fail(`${where}: the image installs ${pkg}; install it here too (.ci/run)`);
      }
      say(`RUN ${step.command}: installed on this machine too`);
    } else if (step.kind === 'chown-user') {
      chownSync(mapArgs(stage, [step.match[1]], { all: true })[0], NODE_USER.uid, NODE_USER.gid);
      say(`RUN ${step.command}: owned by uid ${NODE_USER.uid}`);
    } else {
      say(`RUN ${step.command}: image size only, not run here`);
    }
  }
}

function emulate(stage, { op, args, line }, stages) {
  const where = `Dockerfile:${line}`;
  if (op === 'WORKDIR') {
    stage.workdir = args;
    mkdirSync(hostPath(stage, args), { recursive: true });
  } else if (op === 'ENV') {
    const [, key, value] = /^(\w+)=(\S+)$/.exec(args) ?? fail(`${where}: ENV KEY=value expected`);
    stage.env[key] = value;
  } else if (op === 'COPY') copy(stage, args, stages, where);
  else if (op === 'RUN') run(stage, args, where);
  else if (op === 'USER') stage.user = args === NODE_USER.name ? NODE_USER : fail(`${where}: USER ${args} is not the image's node user`);
  else if (op === 'VOLUME') stage.volumes = parseExecForm(args, where);
  else if (op === 'EXPOSE') stage.expose = args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, '')));
  else if (op === 'HEALTHCHECK') stage.healthcheck = parseHealthcheck(args, where);
  else if (op === 'ENTRYPOINT') stage.entrypoint = parseExecForm(args, where);
  else if (op === 'CMD') stage.cmd = parseExecForm(args, where);
  else fail(`${where}: ${op} is not emulated by scripts/check-container-steps.mjs`);
}

/** Only the lockfile's production packages: every one present, no dev-only one (vitest, typescript...). */
function checkProductionOnly(appDir) {
  const lock = JSON.parse(readFileSync(join(appDir, 'package-lock.json'), 'utf8'));
  const entries = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
  const devPresent = entries.filter(([path, p]) => p.dev && existsSync(join(appDir, path))).map(([path]) => path);
  const prodMissing = entries.filter(([path, p]) => !p.dev && !p.optional && !existsSync(join(appDir, path))).map(([path]) => path);
  if (devPresent.length > 0) fail(`dev dependencies in the runtime folder: ${devPresent.join(', ')}`);
  if (prodMissing.length > 0) fail(`production dependencies missing from the runtime folder: ${prodMissing.join(', ')}`);
  for (const name of Object.keys(JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')).devDependencies ?? {})) {
    if (lock.packages[`node_modules/${name}`]?.dev && existsSync(join(appDir, 'node_modules', name))) fail(`${name} in the runtime folder`);
  }
  say(`runtime folder: ${entries.length - entries.filter(([, p]) => p.dev).length} production packages, none of the ${entries.filter(([, p]) => p.dev).length} dev-only ones (vitest absent: ${!existsSync(join(appDir, 'node_modules/vitest'))})`);
}

/** Writes the config CMD names, as a user would mount it: the example with the README's Docker edits. */
async function mountConfig(stage, configPath) {
  // The image's own config loader says which keys name secret files.
  const cli = mapArgs(stage, stage.entrypoint).find((a) => a.endsWith('cli.js')) ?? fail('ENTRYPOINT runs no cli.js');
  const { SECRET_FILE_KEYS } = await import(join(dirname(cli), 'config/load.js'));
  const doc = parseDocument(readFileSync(join(REPO, 'config.example.yaml'), 'utf8'));
  doc.get('listeners').items.forEach((listener) => listener.set('listen', listener.get('listen').replace(/^[^:]+:/, '0.0.0.0:')));
  const volume = stage.volumes[0] ?? fail('the image declares no VOLUME for the token store');
  doc.set('token_store', doc.createNode({ path: join(hostPath(stage, volume), 'tokens.enc'), key_file: join(hostPath(stage, volume), 'tokens.key') }));
  const folder = dirname(configPath);
  mkdirSync(folder, { recursive: true, mode: 0o755 });
  const env = {};
  const walk = (node) => {
    if (typeof node === 'string') for (const [, name] of node.matchAll(/\$\{(\w+)\}/g)) env[name] = PLACEHOLDER;
    else if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (SECRET_FILE_KEYS.includes(key)) writeFileSync(resolve(folder, value), `${PLACEHOLDER}\n`, { mode: 0o644 });
        walk(value);
      }
    }
  };
  walk(doc.toJS());
  writeFileSync(configPath, doc.toString(), { mode: 0o644 });
  say(`mounted config ${relative(stage.root, configPath)}: example with listeners on 0.0.0.0 and the token store on ${volume}; placeholders for ${Object.keys(env).join(', ')}`);
  return env;
}

/** As the image's USER, in the network namespace held by `pause` (like docker's infra container). */
function inContainer(stage, pause, command) {
  const user = stage.user ?? { uid: 0, gid: 0 };
  return ['nsenter', `--net=/proc/${pause.pid}/ns/net`, '--', 'setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', ...mapArgs(stage, command)];
}

function healthcheck(stage, pause, env) {
  const [file, ...args] = inContainer(stage, pause, stage.healthcheck.command);
  const r = spawnSync(file, args, { env, cwd: hostPath(stage, stage.workdir), timeout: stage.healthcheck.options.timeout ?? 30_000, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

async function startAndProbe(stage, cleanup) {
  if (!stage.healthcheck || stage.entrypoint.length === 0) fail('the runtime stage needs HEALTHCHECK and ENTRYPOINT');
  const pause = spawn('unshare', ['--net', '--', 'sh', '-c', 'ip link set lo up && exec sleep 3600'], { stdio: 'ignore' });
  cleanup.push(() => pause.kill('SIGKILL'));
  const home = join(stage.root, 'home', NODE_USER.name);
  mkdirSync(home, { recursive: true });
  chownSync(home, NODE_USER.uid, NODE_USER.gid);
  const configArg = stage.cmd[stage.cmd.indexOf('-c') + 1] ?? fail('CMD names no config file (-c)');
  const secrets = await mountConfig(stage, hostPath(stage, configArg));
  const env = { PATH: process.env.PATH, HOME: home, ...stage.env, ...secrets };
  await sleep(300);
  if (pause.exitCode !== null) fail('unshare --net could not make a network namespace (root needed)');
  const before = healthcheck(stage, pause, env);
  if (before.ok) fail('HEALTHCHECK passed before the proxy started: it cannot tell');
  const [file, ...args] = inContainer(stage, pause, [...stage.entrypoint, ...stage.cmd]);
  say(`start: ${[...stage.entrypoint, ...stage.cmd].join(' ')} (uid ${stage.user?.uid ?? 0}, own network namespace)`);
  const proxy = spawn(file, args, { env, cwd: hostPath(stage, stage.workdir), stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => proxy.kill('SIGKILL'));
  let log = '';
  proxy.stdout.on('data', (d) => { log += d; });
  proxy.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((done) => proxy.once('exit', (code, signal) => done({ code, signal })));
  try {
    await waitHealthy(stage, pause, env, proxy);
    // The log lines travel through a pipe and pino's buffer: healthy can come first.
    for (const until = Date.now() + LOG_WAIT_MS; !/"event":"listener\.start"/.test(log) && Date.now() < until; ) await sleep(100);
    checkExposed(stage, log);
    proxy.kill('SIGTERM');
    const end = await Promise.race([exited, sleep(STOP_DEADLINE_MS, undefined, { ref: false }).then(() => ({ code: 'timeout' }))]);
    if (end.code !== 0) fail(`after SIGTERM the proxy ended with ${end.code ?? end.signal}, expected exit 0`);
    if (!/"event":"proxy.stop"/.test(log)) fail('no proxy.stop event after SIGTERM');
    say('SIGTERM: exit 0');
    if (healthcheck(stage, pause, env).ok) fail('HEALTHCHECK still passes after the proxy stopped');
    say('HEALTHCHECK fails again once it stopped');
  } catch (err) {
    process.stderr.write(`--- proxy output ---\n${log}--- end ---\n`);
    throw err;
  }
}

async function waitHealthy(stage, pause, env, proxy) {
  const { options } = stage.healthcheck;
  const deadline = Date.now() + (options['start-period'] ?? 0) + (options.timeout ?? 30_000);
  for (let last = { ok: false, output: '' }; ; await sleep(250)) {
    if (proxy.exitCode !== null) fail(`the proxy exited with ${proxy.exitCode} before it was healthy`);
    last = healthcheck(stage, pause, env);
    if (last.ok) break;
    if (Date.now() > deadline) fail(`HEALTHCHECK never passed within the start period; it said: ${last.output.split('\n').find((l) => /Error|healthcheck:/.test(l)) ?? last.output}`);
  }
  say(`HEALTHCHECK ${stage.healthcheck.command.join(' ')}: healthy`);
}

/** Every port the example config listens on is one the image EXPOSEs. */
function checkExposed(stage, log) {
  const ports = log.split('\n').filter((l) => /"event":"(listener|admin)\.start"/.test(l)).map((l) => JSON.parse(l).port);
  if (ports.length === 0) fail('no listener.start in the proxy log');
  const missing = ports.filter((p) => !stage.expose.includes(p));
  if (missing.length > 0) fail(`the example config listens on ${missing.join(', ')}, which the Dockerfile does not EXPOSE`);
  say(`listening on ${ports.join(', ')}: all EXPOSEd`);
}

async function main() {
  if (process.getuid?.() !== 0) fail('run as root: the proxy runs as uid 1000 in a network namespace of its own (unshare, nsenter, setpriv)');
  // `--dockerfile PATH` checks another copy (to show that a broken one fails); COPY still reads the repo.
  const flag = process.argv.indexOf('--dockerfile');
  const dockerfile = flag > 0 ? resolve(process.argv[flag + 1] ?? fail('--dockerfile needs a path')) : join(REPO, 'Dockerfile');
  const stagesText = parseDockerfile(readFileSync(dockerfile, 'utf8'));
  const top = mkdtempSync(join(tmpdir(), 'container-steps-'));
  chmodSync(top, 0o755);
  const cleanup = [() => rmSync(top, { recursive: true, force: true })];
  const onSignal = () => { for (const c of cleanup.reverse()) c(); process.exit(1); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const stages = new Map();
    let stage;
    stagesText.forEach((s, i) => {
      stage = newStage(join(top, s.name ?? `stage-${i}`), s.name);
      say(`FROM ${s.image}${s.name ? ` AS ${s.name}` : ''} (in ${stage.root})`);
      for (const instruction of s.instructions) emulate(stage, instruction, stages);
      if (s.name) stages.set(s.name, stage);
    });
    if (!stage.user) fail('the runtime stage has no USER: the proxy must not run as root');
    checkProductionOnly(hostPath(stage, stage.workdir));
    for (const volume of stage.volumes) {
      const owner = statSync(hostPath(stage, volume)).uid;
      if (stage.user && owner !== stage.user.uid) fail(`VOLUME ${volume} is owned by uid ${owner}, not the USER ${stage.user.name}`);
    }
    await startAndProbe(stage, cleanup);
    say('ok');
  } finally {
    for (const c of cleanup.reverse()) c();
  }
}

main().catch((err) => {
  process.stderr.write(`container-steps: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
