import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccountSettings } from '../config/resolve.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { Secret } from '../secret.js';
import { DigestCache, hashPassword, verifyScryptHash } from './password.js';
import { LoginThrottle } from './throttle.js';
import type { AuthEvents, Authenticator, ClientInfo } from './types.js';

/**
 * The local accounts and their login check (SPEC section 4). A wrong password is refused
 * every time; there is no "first password wins". Usernames match case-insensitively, as
 * email addresses do in practice.
 */
export class AccountRegistry implements Authenticator {
  #byName = new Map<string, AccountSettings>();
  readonly #digests = new DigestCache();
  readonly #throttle: LoginThrottle;
  readonly #log: Logger;
  readonly #events: AuthEvents;
  /** Hashed once at start so an unknown user costs what a known one does. */
  readonly #dummyHash: Promise<string>;

  constructor(accounts: AccountSettings[], log: Logger, throttle = new LoginThrottle(), events: AuthEvents = {}) {
    this.#log = log;
    this.#throttle = throttle;
    this.#events = events;
    this.#dummyHash = hashPassword(new Secret('not-a-password'), 10);
    this.replace(accounts);
  }

  /** Swaps in a reloaded account list; remembered passwords stay valid only for unchanged hashes. */
  replace(accounts: AccountSettings[]): void {
    this.#byName = new Map(accounts.map((a) => [a.username.toLowerCase(), a]));
  }

  find(username: string): AccountSettings | undefined {
    return this.#byName.get(username.toLowerCase());
  }

  list(): AccountSettings[] {
    return [...this.#byName.values()];
  }

  get throttle(): LoginThrottle {
    return this.#throttle;
  }

  /**
   * A locked-out address is refused at once, before any password check, with the same reply a
   * wrong password gets: the client learns nothing, and costs us nothing. Other failures are
   * answered after the throttle's delay, which grows with each failure from that address.
   */
  async authenticate(username: string, password: Secret, client: ClientInfo): Promise<AccountSettings> {
    const { address, protocol } = client;
    if (this.#throttle.isLockedOut(address)) {
      this.#events.loginFailed?.({ protocol, address, delayMs: 0, lockedOut: true });
      throw new ProxyError('auth_failed', 'too many failed logins from this address; try again later');
    }
    const account = this.find(username);
    const ok = account ? await this.#verify(account, password) : await this.#burnTime(password);
    if (ok && account) {
      this.#throttle.recordSuccess(address);
      return account;
    }
    const delay = this.#throttle.recordFailure(address);
    const until = this.#throttle.lockedUntil(address);
    if (until !== undefined) {
      const seconds = Math.round(this.#throttle.lockoutMs / 1000);
      this.#log.warn({ event: 'auth.lockout', client: address, protocol, seconds }, `address locked out for ${seconds} s after repeated login failures`);
      this.#events.lockedOut?.({ protocol, address, until });
    }
    this.#events.loginFailed?.({ protocol, address, delayMs: delay, lockedOut: false });
    if (delay > 0) await sleep(delay);
    throw new ProxyError('auth_failed', account ? 'wrong password' : 'unknown user');
  }

  async #verify(account: AccountSettings, password: Secret): Promise<boolean> {
    const local = account.localPassword;
    switch (local.kind) {
      case 'provider':
        // ROPC: the identity provider is the judge; the token manager asks it (or its verifier).
        return password.length > 0;
      case 'plain':
        return timingSafeEqual(this.#digests.digest(password, account.username), this.#digests.digest(local.value, account.username));
      case 'scrypt': {
        const id = `${account.username}\0${local.hash}`;
        if (this.#digests.matches(id, password)) return true;
        const ok = await verifyScryptHash(local.hash, password);
        if (ok) this.#digests.remember(id, password);
        return ok;
      }
    }
  }

  async #burnTime(password: Secret): Promise<boolean> {
    await verifyScryptHash(await this.#dummyHash, password);
    return false;
  }
}
