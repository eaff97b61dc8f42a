import { timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AccountSettings } from '../config/resolve.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { Secret } from '../secret.js';
import { DigestCache, parseScryptHash, verifyScryptHash } from './password.js';
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
  /** What an unknown user's password is checked against, so that it costs what a known one's does. */
  #decoy: string | undefined;

  constructor(accounts: AccountSettings[], log: Logger, throttle = new LoginThrottle(), events: AuthEvents = {}) {
    this.#log = log;
    this.#throttle = throttle;
    this.#events = events;
    this.replace(accounts);
  }

  /** Swaps in a reloaded account list; remembered passwords stay valid only for unchanged hashes. */
  replace(accounts: AccountSettings[]): void {
    this.#byName = new Map(accounts.map((a) => [a.username.toLowerCase(), a]));
    this.#decoy = costliestHash(accounts);
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
      // ROPC: the identity provider has not judged the password yet (settleLogin).
      if (account.localPassword.kind !== 'provider') this.#throttle.recordSuccess(address);
      return account;
    }
    await this.#countFailure(client);
    throw new ProxyError('auth_failed', account ? 'wrong password' : 'unknown user');
  }

  async settleLogin(client: ClientInfo, accepted: boolean): Promise<void> {
    if (accepted) this.#throttle.recordSuccess(client.address);
    else await this.#countFailure(client);
  }

  /** A failed login: counted, logged and told to the metrics when it locks the address out, then delayed. */
  async #countFailure({ address, protocol }: ClientInfo): Promise<void> {
    const delay = this.#throttle.recordFailure(address);
    const until = this.#throttle.lockedUntil(address);
    if (until !== undefined) {
      const seconds = Math.round(this.#throttle.lockoutMs / 1000);
      this.#log.warn({ event: 'auth.lockout', client: address, protocol, seconds }, `address locked out for ${seconds} s after repeated login failures`);
      this.#events.lockedOut?.({ protocol, address, until });
    }
    this.#events.loginFailed?.({ protocol, address, delayMs: delay, lockedOut: false });
    if (delay > 0) await sleep(delay);
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

  /**
   * An unknown user takes as long to refuse as a wrong password for a known one, so that the
   * time of the answer does not tell which user names exist: the password is checked against
   * the costliest configured hash and the result thrown away. With no hashes configured, known
   * users are checked by digest in microseconds, and so is an unknown one.
   */
  async #burnTime(password: Secret): Promise<boolean> {
    if (this.#decoy) await verifyScryptHash(this.#decoy, password);
    else timingSafeEqual(this.#digests.digest(password, ''), this.#digests.digest(password, '\0'));
    return false;
  }
}

/** The configured scrypt hash that costs the most to verify (N·r·p), if any. */
function costliestHash(accounts: AccountSettings[]): string | undefined {
  let best: { hash: string; cost: number } | undefined;
  for (const { localPassword: local } of accounts) {
    if (local.kind !== 'scrypt') continue;
    const parsed = parseScryptHash(local.hash);
    const cost = parsed ? 2 ** parsed.logN * parsed.r * parsed.p : 0;
    if (parsed && (!best || cost > best.cost)) best = { hash: local.hash, cost };
  }
  return best?.hash;
}
