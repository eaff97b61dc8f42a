import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * End-to-end suite: the built proxy between real clients (curl, python3 imaplib/poplib/smtplib,
 * fetchmail, msmtp, swaks) and real servers (Dovecot, Postfix) that check real bearer tokens at
 * the mock identity provider. `npm run test:e2e` builds, starts the servers (servers/up.sh, as
 * root) and runs this; global-setup.ts starts them too when they are not up.
 */
export default defineConfig({
  root: resolve(import.meta.dirname, '../..'),
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/temp-root.ts', 'test/e2e/global-setup.ts'],
    // One file at a time: the files share the servers and the identity provider's settings.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
