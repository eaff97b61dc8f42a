import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFileStore } from '../../../src/store/file-store.js';

describe('file store after a crash', () => {
  it('removes the temp files of writers that are gone, and leaves a live one alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-store-'));
    mkdirSync(join(dir, 'data'));
    // A process id that has certainly exited: a child that ran and was waited for.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(join(dir, 'data', `.tokens.enc.${dead}.abcdef.tmp`), 'half-written');
    writeFileSync(join(dir, 'data', `.tokens.enc.${process.pid}.123456.tmp`), 'in progress');
    writeFileSync(join(dir, 'data', 'unrelated.tmp'), 'not ours');
    const store = await openFileStore({ path: join(dir, 'data', 'tokens.enc'), keyFile: join(dir, 'data', 'tokens.key') }, {});
    await store.close();
    expect(readdirSync(join(dir, 'data')).sort()).toEqual([`.tokens.enc.${process.pid}.123456.tmp`, 'tokens.key', 'unrelated.tmp']);
  });
});
