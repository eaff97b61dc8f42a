import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { AccountRegistry } from '../../src/accounts/registry.js';
import type { Authenticator, ClientInfo } from '../../src/accounts/types.js';
import type { AccountSettings } from '../../src/config/resolve.js';
import { Secret } from '../../src/secret.js';
import type { TokenManager, TokenRequestOptions } from '../../src/tokens/types.js';
import { FUZZ_TOKEN, type Transcript } from './fuzz-types.js';

/** The fakes of the session fuzzer that record what the session under test asked for. */

/** Records the registry's decisions; the registry is the real one. */
export class RecordingAuthenticator implements Authenticator {
  calls: Transcript['authCalls'] = [];
  constructor(private readonly inner: AccountRegistry) {}
  /** The SMTP relay account is looked up by name. */
  find(username: string): AccountSettings | undefined {
    return this.inner.find(username);
  }
  async authenticate(username: string, password: Secret, client: ClientInfo): Promise<AccountSettings> {
    // A refused call is kept cut short: the checks only count those, and a flood of refused
    // logins with 8 kB names would otherwise grow this recorder, not the proxy, by megabytes.
    const call = { username: copyStart(username), password: copyStart(password.reveal()), ok: false };
    this.calls.push(call);
    const account = await this.inner.authenticate(username, password, client);
    Object.assign(call, { username, password: password.reveal(), ok: true });
    return account;
  }
  settleLogin(client: ClientInfo, accepted: boolean): Promise<void> {
    return this.inner.settleLogin(client, accepted);
  }
}

export class RecordingTokenManager implements TokenManager {
  calls: Transcript['tokenCalls'] = [];
  /** Counted when asked, before any upstream connection can follow. */
  constructor(private readonly total: { tokenCalls: number } = { tokenCalls: 0 }) {}
  async getToken(username: string, options: TokenRequestOptions): Promise<Secret> {
    this.calls.push({ username, password: options.password?.reveal() });
    this.total.tokenCalls++;
    return new Secret(FUZZ_TOKEN);
  }
  async withFreshToken<T>(username: string, options: TokenRequestOptions, use: (token: Secret) => Promise<T>): Promise<T> {
    return use(await this.getToken(username, options));
  }
  status() {
    return [];
  }
  async authorize(): Promise<void> {}
  async replaceAccounts() {
    return { added: [], removed: [], changed: [] };
  }
  start(): void {}
  async stop(): Promise<void> {}
}

export function memoryLog(): { log: Logger; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => text };
}

/** The first 64 characters as a string of their own (a slice would keep the whole string alive). */
function copyStart(text: string): string {
  return Buffer.from(text.slice(0, 64), 'utf8').toString('utf8');
}
