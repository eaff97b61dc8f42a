import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findLeaks, secretsOfConfig } from '../integration/secret-scan.js';

/** The integration tests' secret scan must be able to fail: it finds what it is meant to find. */
describe('secret scan of the integration tests', () => {
  it('collects inline and *_file secrets from a config, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'omp-scan-'));
    writeFileSync(join(dir, 'pw'), 'file-password-1\n');
    writeFileSync(join(dir, 'config.yaml'), `
accounts:
  - { username: a@example.com, password_file: ./pw, refresh_token: rt-inline-123 }
  - { username: b@example.com, password: short }
providers: { corp: { client_secret: corp-secret-9, scope: mail } }
admin: { bearer_token: bearer-token-0123456789 }
`);
    expect([...secretsOfConfig(join(dir, 'config.yaml'))].sort()).toEqual(['bearer-token-0123456789', 'corp-secret-9', 'file-password-1', 'rt-inline-123']);
  });

  it('finds a secret as it is, inside a base64 SASL payload at any offset, and tokens by their shape', () => {
    const secret = 'local "pass" \\ word';
    expect(findLeaks('nothing here', [secret])).toEqual([]);
    expect(findLeaks(`password=${secret}`, [secret])).toHaveLength(1);
    for (const user of ['a', 'ab', 'abc', 'alice@example.com']) {
      const plain = Buffer.from(`\0${user}\0${secret}`).toString('base64');
      expect(findLeaks(`AUTHENTICATE PLAIN ${plain}`, [secret])).toHaveLength(1);
    }
    expect(findLeaks(`token at_${'x'.repeat(30)}`, [])).toHaveLength(1);
  });
});
