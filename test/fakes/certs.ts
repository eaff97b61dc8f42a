import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throwaway TLS material for tests, made once per test process with the `openssl` CLI:
 * a test CA, a "localhost" server certificate signed by it (subjectAltName DNS:localhost,
 * IP:127.0.0.1, IP:::1, as RFC 6125 matching wants), and an untrusted self-signed certificate
 * for the same names, for "bad certificate" tests. Files live in a temp folder keyed on the
 * process id and are removed when the process exits, or by a later run once it is gone.
 */

export interface PemPair {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export interface TestCertificates extends PemPair {
  /** The CA that signed certPem; give it to clients as `ca`. */
  caPem: string;
  caFile: string;
  /** Self-signed for the same names, trusted by nobody: a client must refuse it. */
  untrustedCert: PemPair;
}

const SAN = 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1';
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

const DIR_PREFIX = 'oauth-mail-proxy-test-certs-';
const DIR_PREFIX_PATTERN = /^oauth-mail-proxy-test-certs-(\d+)$/;

let cached: TestCertificates | undefined;

/** The certificates of this test process, generated on first call (about a tenth of a second). */
export function getTestCertificates(): TestCertificates {
  cached ??= loadOrCreate(join(tmpdir(), `${DIR_PREFIX}${process.pid}`));
  return cached;
}

function loadOrCreate(dir: string): TestCertificates {
  const file = (name: string): string => join(dir, name);
  if (!existsSync(file('done'))) create(dir, file);
  const pair = (cert: string, key: string): PemPair => ({
    certPem: readFileSync(file(cert), 'utf8'),
    keyPem: readFileSync(file(key), 'utf8'),
    certFile: file(cert),
    keyFile: file(key),
  });
  return {
    ...pair('server.pem', 'server.key'),
    caPem: readFileSync(file('ca.pem'), 'utf8'),
    caFile: file('ca.pem'),
    untrustedCert: pair('untrusted.pem', 'untrusted.key'),
  };
}

function create(dir: string, file: (name: string) => string): void {
  removeStaleDirs();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  openssl(['req', '-x509', ...EC_KEY, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '3',
    '-subj', '/CN=oauth-mail-proxy test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...EC_KEY, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(file('server.ext'), `${SAN}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
  openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('server.pem'), '-days', '3', '-extfile', file('server.ext')]);
  openssl(['req', '-x509', ...EC_KEY, '-keyout', file('untrusted.key'), '-out', file('untrusted.pem'), '-days', '3',
    '-subj', '/CN=localhost', '-addext', SAN]);
  writeFileSync(file('done'), '');
}

/**
 * Test workers are often killed rather than exited, so the exit hook above does not always run:
 * folders of processes that no longer exist are removed here instead.
 */
function removeStaleDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(DIR_PREFIX_PATTERN.exec(name)?.[1]);
    if (pid && pid !== process.pid && !isAlive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
