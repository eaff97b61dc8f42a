import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { TLSSocket, createSecureContext, type SecureContext, type SecureVersion } from 'node:tls';
import { promisify } from 'node:util';
import type { ListenerConfig } from '../config/schema.js';
import { ProxyError, describeError } from '../errors.js';
import { CLIENT_TLS_HANDSHAKE_TIMEOUT_MS, LOCAL_CERT_RECHECK_MS } from '../limits.js';
import { abortReason, startDeadline } from './deadline.js';

const run = promisify(execFile);

/** File names of the generated pair inside the folder given to `ensureSelfSignedCertificate`. */
export const SELF_SIGNED_CERT_FILE = 'localhost-cert.pem';
export const SELF_SIGNED_KEY_FILE = 'localhost-key.pem';

/** The certificate a listener presents: `context` is read at each handshake, so a reload can replace it. */
export interface LocalTlsSource {
  readonly context: SecureContext;
}

/**
 * What a re-check made at a handshake found (LOCAL_CERT_RECHECK_MS), when it changed anything:
 * a renewed pair now in use, or files that cannot be used (the pair in use stays).
 */
export type CertificateRecheck = { renewed: true } | { renewed: false; error: unknown };

/**
 * The TLS context toward local clients: the listener's cert_file/key_file, or a self-signed
 * localhost pair generated once into `folder` and reused on later starts. min_tls_version is
 * honoured; TLS 1.0/1.1 (old printers) also need OpenSSL's security level 0 for their ciphers.
 *
 * A certificate renewed where the old one was (certbot, an ACME client, a Kubernetes secret) is
 * used from a later handshake on, without a moment in which the port is closed and without
 * touching a session: `reload` reads the pair again at once (SIGHUP), and a handshake that finds
 * the last read older than LOCAL_CERT_RECHECK_MS starts a read in the background, for renewals
 * that send no signal. A pair that cannot be read, or whose key does not match, is refused and
 * the one in use is kept.
 */
export class LocalTls implements LocalTlsSource {
  readonly #files: PairFiles;
  readonly #minVersion: SecureVersion;
  #loaded: LoadedPair;
  /** When the files were last read (Date.now()). */
  #readAt = Date.now();
  #rechecking = false;
  /** Reads in turn, so that a SIGHUP during a background re-check reports what it finds itself. */
  #reads: Promise<unknown> = Promise.resolve();
  /** Told what a background re-check changed (ListenerSet logs it); nothing is said of an unchanged pair. */
  onRecheck: ((outcome: CertificateRecheck) => void) | undefined;

  private constructor(files: PairFiles, minVersion: SecureVersion, loaded: LoadedPair) {
    this.#files = files;
    this.#minVersion = minVersion;
    this.#loaded = loaded;
  }

  static async open(listener: ListenerConfig, folder: string): Promise<LocalTls> {
    const files = listener.cert_file && listener.key_file
      ? { certFile: listener.cert_file, keyFile: listener.key_file }
      : await ensureSelfSignedCertificate(folder);
    return new LocalTls(files, listener.min_tls_version, await loadPair(files, listener.min_tls_version));
  }

  /** The pair in use, for this handshake; may start a background re-check for the ones after it. */
  get context(): SecureContext {
    if (!this.#rechecking && Date.now() - this.#readAt >= LOCAL_CERT_RECHECK_MS) this.#recheck();
    return this.#loaded.context;
  }

  /** 'renewed' when the files changed; throws ProxyError `config_invalid` (and keeps the pair in use) when they cannot be used. */
  reload(): Promise<'renewed' | 'unchanged'> {
    const read = this.#reads.then(() => this.#readAgain());
    this.#reads = read.catch(() => undefined);
    return read;
  }

  async #readAgain(): Promise<'renewed' | 'unchanged'> {
    // Set first: files that cannot be used are tried again after the interval, not at every handshake.
    this.#readAt = Date.now();
    const [cert, key] = await readPair(this.#files);
    if (digestOf(cert, key) === this.#loaded.digest) return 'unchanged';
    this.#loaded = await loadPair(this.#files, this.#minVersion, [cert, key]);
    return 'renewed';
  }

  #recheck(): void {
    this.#rechecking = true;
    this.reload().then(
      (result) => {
        if (result === 'renewed') this.onRecheck?.({ renewed: true });
      },
      (error: unknown) => this.onRecheck?.({ renewed: false, error }),
    ).finally(() => {
      this.#rechecking = false;
    });
  }
}

interface PairFiles {
  certFile: string;
  keyFile: string;
}

interface LoadedPair {
  context: SecureContext;
  /** Of the files' bytes: a reload that finds the same bytes keeps the context. */
  digest: string;
}

async function loadPair(files: PairFiles, minVersion: SecureVersion, read?: [Buffer, Buffer]): Promise<LoadedPair> {
  const [cert, key] = read ?? await readPair(files);
  try {
    return { context: createSecureContext({ cert, key, ...tlsVersionOptions(minVersion) }), digest: digestOf(cert, key) };
  } catch (err) {
    throw pairError(files, err);
  }
}

async function readPair(files: PairFiles): Promise<[Buffer, Buffer]> {
  try {
    return await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw pairError(files, err);
  }
}

function pairError(files: PairFiles, err: unknown): ProxyError {
  return new ProxyError('config_invalid', `TLS certificate ${files.certFile} / key ${files.keyFile}: ${describeError(err)}`, { cause: err });
}

function digestOf(cert: Buffer, key: Buffer): string {
  return createHash('sha256').update(cert).update('\0').update(key).digest('base64');
}

/** minVersion, plus legacy ciphers when a version below TLS 1.2 is allowed. */
export function tlsVersionOptions(minVersion: SecureVersion): { minVersion: SecureVersion; ciphers?: string } {
  const legacy = minVersion === 'TLSv1' || minVersion === 'TLSv1.1';
  return legacy ? { minVersion, ciphers: 'DEFAULT:@SECLEVEL=0' } : { minVersion };
}

/**
 * A self-signed certificate for localhost, 127.0.0.1 and ::1 (RSA 2048: old clients), made
 * with the openssl CLI the first time and reused afterwards. Written to temporary names and
 * renamed, so that a crash never leaves half a pair; the key is mode 0600.
 */
export async function ensureSelfSignedCertificate(folder: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(folder, SELF_SIGNED_CERT_FILE);
  const keyFile = join(folder, SELF_SIGNED_KEY_FILE);
  if (await exists(certFile) && await exists(keyFile)) return { certFile, keyFile };
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const suffix = `.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-keyout', keyFile + suffix, '-out', certFile + suffix,
    ], { timeout: 30_000 });
    await chmod(keyFile + suffix, 0o600);
    await rename(keyFile + suffix, keyFile);
    await rename(certFile + suffix, certFile);
  } catch (err) {
    await Promise.all([rm(keyFile + suffix, { force: true }), rm(certFile + suffix, { force: true })]);
    throw new ProxyError('config_invalid', `Cannot generate a self-signed certificate in ${folder} with the openssl command (set cert_file and key_file instead): ${describeError(err)}`, { cause: err });
  }
  return { certFile, keyFile };
}

/**
 * Server side of a TLS handshake on an accepted socket (implicit TLS, or after STARTTLS).
 * Resolves once the handshake is done; ProxyError `bad_input` when it fails, `limit_exceeded`
 * after CLIENT_TLS_HANDSHAKE_TIMEOUT_MS.
 */
export async function acceptTls(socket: Socket, context: SecureContext, signal: AbortSignal): Promise<TLSSocket> {
  const deadline = startDeadline(CLIENT_TLS_HANDSHAKE_TIMEOUT_MS, 'limit_exceeded', 'TLS handshake timed out', signal);
  const secure = new TLSSocket(socket, { isServer: true, secureContext: context });
  // Errors after the handshake are the session's business; this keeps them from crashing us.
  secure.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: unknown): void => {
        cleanup();
        reject(err instanceof ProxyError ? err : new ProxyError('bad_input', `TLS handshake failed: ${describeError(err)}`, { cause: err }));
      };
      const onAbort = (): void => fail(abortReason(deadline.signal));
      const onClose = (): void => fail(new Error('connection closed during the TLS handshake'));
      const onSecure = (): void => {
        cleanup();
        resolve();
      };
      const cleanup = (): void => {
        secure.off('secure', onSecure);
        secure.off('error', fail);
        secure.off('close', onClose);
        deadline.signal.removeEventListener('abort', onAbort);
      };
      secure.once('secure', onSecure);
      secure.once('error', fail);
      secure.once('close', onClose);
      if (deadline.signal.aborted) onAbort();
      else deadline.signal.addEventListener('abort', onAbort, { once: true });
    });
  } catch (err) {
    secure.destroy();
    throw err;
  } finally {
    deadline.clear();
  }
  return secure;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
