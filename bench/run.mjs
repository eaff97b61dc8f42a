#!/usr/bin/env node
// `npm run bench`: the proxy against a direct connection to the same server (issue 7).
//
//   node bench/run.mjs [--quick] [--upstream auto|fake|e2e] [--profile] [--no-write]
//
// Starts its own upstream (the end-to-end Dovecot/Postfix when they are up, else the fakes),
// runs the BUILT proxy (node dist/cli.js serve) as a child process, measures, prints a markdown
// table and writes it to docs/benchmarks.md. Everything is on 127.0.0.1; every loop is bounded
// in count and time, and a watchdog ends the run if anything hangs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measureConcurrency } from './lib/concurrency.mjs';
import { measureLoginAndBulk } from './lib/sequential.mjs';
import { load1, machine, openFilesLimit } from './lib/proc.mjs';
import { renderRun, writeReport } from './lib/report.mjs';
import { startUpstream } from './lib/upstream.mjs';

const WATCHDOG_MS = 25 * 60_000;
const NEEDED_OPEN_FILES = 16_384;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    upstream: { type: 'string', default: 'auto' },
    profile: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    /** For profiling one part: `sequential` (rows 1, 2) or `concurrency` (row 3). */
    only: { type: 'string' },
    /** Bulk protocols to measure besides IMAP (default: every one available). */
    protocols: { type: 'string', default: 'pop3,smtp' },
    /** Overrides of the plan, for trying things out (a run with them is not written). */
    sessions: { type: 'string' },
    hold: { type: 'string' },
    /** Writes a V8 heap snapshot of the proxy at the end of the idle hold (kept with --keep). */
    'heap-snapshot': { type: 'boolean', default: false },
  },
});

ensureOpenFiles();

/** The sizes of one run; --quick is for trying the script, not for the report. */
const plan = args.quick
  ? { reps: 3, logins: 50, fetches: 5, idleSessions: 300, holdSeconds: 5, concurrent: 50, concurrentReps: 2 }
  : { reps: 5, logins: 200, fetches: 20, idleSessions: 2000, holdSeconds: 30, concurrent: 200, concurrentReps: 3 };

if (args.sessions) plan.idleSessions = Number(args.sessions);
if (args.hold) plan.holdSeconds = Number(args.hold);
const overridden = Boolean(args.sessions || args.hold || args['heap-snapshot']);

const dir = mkdtempSync(join(tmpdir(), 'omp-bench-'));
const cleanups = [];
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} min; giving up`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

async function cleanup() {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
}

try {
  const started = new Date();
  const loadBefore = load1();
  // The 1-minute load average every 5 s: the run's noise, reported with the results.
  const loads = [loadBefore];
  const loadSampler = setInterval(() => loads.push(load1()), 5000);
  loadSampler.unref();
  const upstream = await startUpstream(/** @type {'auto'|'fake'|'e2e'} */ (args.upstream), join(dir, 'upstream'));
  cleanups.push(() => upstream.stop());
  log(`upstream: ${upstream.description}${upstream.note ? ` (${upstream.note})` : ''}`);
  const nodeArgs = [
    ...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'profiles')}`] : []),
    ...(args['heap-snapshot'] ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${join(dir, 'profiles')}`] : []),
  ];
  if (args['heap-snapshot']) plan.heapSnapshot = true;
  if (nodeArgs.length > 0) mkdirSync(join(dir, 'profiles'), { recursive: true });
  const skipped = (what) => Promise.resolve({ error: `skipped (--only ${args.only})`, skipped: what });
  const sequential = args.only === 'concurrency'
    ? await skipped('sequential')
    : await measureLoginAndBulk({ upstream, dir, plan, nodeArgs, cleanups, log, protocols: args.protocols.split(',') })
      .catch((err) => ({ error: `failed: ${err instanceof Error ? err.message : String(err)}` }));
  const concurrency = args.only === 'sequential'
    ? await skipped('concurrency')
    : await measureConcurrency({ upstream: await fakeUpstream(upstream), dir, plan, nodeArgs, cleanups, log })
      .catch((err) => ({ error: `failed: ${err instanceof Error ? err.message : String(err)}` }));
  const run = {
    started, finished: new Date(), loadBefore, loadAfter: load1(), loadMax: Math.max(...loads, load1()), machine: machine(), plan, upstream,
    command: `npm run bench${args.quick ? ' -- --quick' : ''}`, sequential, concurrency,
  };
  const markdown = renderRun(run);
  console.log(`\n${markdown}`);
  if (args.quick || args['no-write'] || args.only || overridden) log('not writing docs/benchmarks.md (--quick, --only, --sessions, --hold or --no-write)');
  else log(`wrote ${writeReport(markdown)}`);
  if (args.profile || args['heap-snapshot']) {
    args.keep = true;
    log(`CPU profiles of the proxy (written when it stops): ${join(dir, 'profiles')}`);
  }
} catch (err) {
  console.error('bench failed:', err instanceof Error ? err.stack : err);
  process.exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}

/**
 * The concurrency measurement always runs against the fake IMAP server: the end-to-end
 * Dovecot allows 100 connections per user and address (mail_max_userip_connections) and
 * 100 processes per service (default_process_limit), far from 2,000 sessions.
 */
async function fakeUpstream(upstream) {
  if (upstream.kind === 'fake') return upstream;
  const fake = await startUpstream('fake', join(dir, 'upstream-fake'));
  cleanups.push(() => fake.stop());
  return fake;
}

function log(message) {
  console.error(`bench: ${message}`);
}

/**
 * 2,000 sessions need about 6,000 descriptors across the three processes, more than a default
 * soft limit of 1,024. Node cannot raise its own limit, so the script runs itself again under
 * the shell's `ulimit -n` (up to the hard limit); children inherit it.
 */
function ensureOpenFiles() {
  const { soft, hard } = openFilesLimit();
  if (soft >= NEEDED_OPEN_FILES || process.env.OMP_BENCH_ULIMIT_RAISED) return;
  const target = Math.min(hard, NEEDED_OPEN_FILES);
  if (target <= soft) {
    console.error(`bench: open files limit is ${soft} (hard ${hard}); 2,000 sessions may fail`);
    return;
  }
  const result = spawnSync('sh', ['-c', `ulimit -n ${target} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, OMP_BENCH_ULIMIT_RAISED: '1' },
  });
  process.exit(result.status ?? 1);
}
