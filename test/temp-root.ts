import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Vitest global setup: one temporary directory per test run, removed when the run ends. The
 * tests and harnesses make their own directories with `mkdtemp(tmpdir())` (configs, keys, token
 * stores, certificates) and do not remove them, often on purpose, since a failed test's files
 * are worth reading. `os.tmpdir()` follows TMPDIR, which the worker processes (pool: 'forks')
 * and every proxy they spawn inherit from here, so all of it lands under this one directory.
 * Set OMP_KEEP_TEST_FILES=1 to keep it and read what a failing run left.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'omp-test-run-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.OMP_KEEP_TEST_FILES) console.log(`test files kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  };
}
