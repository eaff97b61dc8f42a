import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { e2eEnv } from './env.js';

/** The server side of the checks: what Dovecot and Postfix really hold in the Maildirs. */

export function maildirOf(user: string): string {
  return join(e2eEnv().mailDir, user, 'Maildir');
}

function messageFiles(user: string): string[] {
  const md = maildirOf(user);
  return ['new', 'cur'].flatMap((sub) => {
    const dir = join(md, sub);
    return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  });
}

const SEED_NAME = /^170000000[123]\.M[123]P1\.e2e-seed-[123],/;

/**
 * Removes every message but the seeded ones from every user's Maildir, so that each run starts
 * from the state up.sh made (Dovecot notices the expunges at its next sync).
 */
export function pruneMaildirs(): number {
  let removed = 0;
  for (const user of e2eEnv().users) {
    for (const file of messageFiles(user)) {
      if (!SEED_NAME.test(file.slice(file.lastIndexOf('/') + 1))) {
        rmSync(file, { force: true });
        removed++;
      }
    }
  }
  return removed;
}

/** The file of seeded message n (1 small, 2 MIME, 3 the 10 MiB one), wherever Dovecot moved it. */
export function seedFile(user: string, n: 1 | 2 | 3): string {
  const prefix = `170000000${n}.M${n}P1.e2e-seed-${n},`;
  const found = messageFiles(user).find((f) => f.slice(f.lastIndexOf('/') + 1).startsWith(prefix));
  if (!found) throw new Error(`seed message ${n} of ${user} is missing from ${maildirOf(user)}`);
  return found;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The first bytes of a file: where the headers are. */
function head(file: string, bytes = 64 * 1024): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0));
  } finally {
    closeSync(fd);
  }
}

/** Message files of `user` whose headers contain `marker` (a unique Subject or Message-ID). */
export function findMessages(user: string, marker: string): string[] {
  return messageFiles(user).filter((f) => {
    try {
      return head(f).includes(marker);
    } catch {
      return false; // renamed by Dovecot while we looked
    }
  });
}

/** Waits until Postfix has delivered a message containing `marker` to `user`'s Maildir. */
export async function waitForMessage(user: string, marker: string, timeoutMs = 20_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [file] = findMessages(user, marker);
    if (file) return readFileSync(file);
    if (Date.now() > deadline) throw new Error(`no message with ${marker} in ${maildirOf(user)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A marker unique to this run and test, to find a sent message again. */
export function uniqueMarker(label: string): string {
  return `omp-e2e-${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The body of a stored message, line ends normalised to CRLF (Postfix stores LF). */
export function bodyOf(message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/\r?\n/g, '\r\n');
  const at = text.indexOf('\r\n\r\n');
  return Buffer.from(at < 0 ? '' : text.slice(at + 4), 'latin1');
}
