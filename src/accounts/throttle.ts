import { isIP } from 'node:net';
import {
  LOGIN_DELAY_BASE_MS, LOGIN_DELAY_MAX_MS, LOGIN_FAILURE_WINDOW_MS, LOGIN_FREE_FAILURES, LOGIN_LOCKOUT_AFTER, LOGIN_LOCKOUT_MS,
} from '../limits.js';

/**
 * Slows down and then refuses repeated login failures from one client address (SPEC
 * section 4). The right password from another address is never affected. An IPv6 client is
 * counted by its /64: one host usually holds a whole /64 and could otherwise step to a fresh
 * address for every guess.
 */
export interface ThrottleOptions {
  /** Failures allowed without delay. */
  freeFailures: number;
  /** First delay after the free failures; doubles with each further failure. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Failures within the window that lock the address out. */
  lockoutAfter: number;
  lockoutMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
  now?: () => number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = {
  freeFailures: LOGIN_FREE_FAILURES,
  baseDelayMs: LOGIN_DELAY_BASE_MS,
  maxDelayMs: LOGIN_DELAY_MAX_MS,
  lockoutAfter: LOGIN_LOCKOUT_AFTER,
  lockoutMs: LOGIN_LOCKOUT_MS,
  windowMs: LOGIN_FAILURE_WINDOW_MS,
};

interface Entry {
  failures: number;
  lastFailure: number;
  lockedUntil: number;
}

/** Bounded so that a flood of spoofed addresses cannot grow memory without limit. */
const MAX_TRACKED_ADDRESSES = 100_000;

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #options: ThrottleOptions;
  readonly #now: () => number;

  constructor(options: Partial<ThrottleOptions> = {}) {
    this.#options = { ...DEFAULT_THROTTLE, ...options };
    this.#now = options.now ?? Date.now;
  }

  #entry(address: string): Entry | undefined {
    const key = throttleKey(address);
    const e = this.#entries.get(key);
    if (e && this.#now() - e.lastFailure > this.#options.windowMs && e.lockedUntil <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** How long a lockout lasts. */
  get lockoutMs(): number {
    return this.#options.lockoutMs;
  }

  /** When the address's lockout ends (epoch ms), or undefined when it is not locked out. */
  lockedUntil(address: string): number | undefined {
    const e = this.#entry(address);
    return e !== undefined && e.lockedUntil > this.#now() ? e.lockedUntil : undefined;
  }

  /** True while the address is locked out. */
  isLockedOut(address: string): boolean {
    const e = this.#entry(address);
    return e !== undefined && e.lockedUntil > this.#now();
  }

  /** Records a failure and returns how long to wait before answering it. */
  recordFailure(address: string): number {
    const now = this.#now();
    let e = this.#entry(address);
    if (!e) {
      if (this.#entries.size >= MAX_TRACKED_ADDRESSES) {
        const oldest = this.#entries.keys().next().value;
        if (oldest !== undefined) this.#entries.delete(oldest);
      }
      e = { failures: 0, lastFailure: now, lockedUntil: 0 };
      this.#entries.set(throttleKey(address), e);
    }
    e.failures++;
    e.lastFailure = now;
    if (e.failures >= this.#options.lockoutAfter) e.lockedUntil = now + this.#options.lockoutMs;
    return this.delayFor(e.failures);
  }

  delayFor(failures: number): number {
    const over = failures - this.#options.freeFailures;
    if (over <= 0) return 0;
    return Math.min(this.#options.baseDelayMs * 2 ** (over - 1), this.#options.maxDelayMs);
  }

  recordSuccess(address: string): void {
    this.#entries.delete(throttleKey(address));
  }

  /** Addresses (IPv6: /64 networks) currently locked out, for metrics and the status page. */
  lockedOutCount(): number {
    const now = this.#now();
    let n = 0;
    for (const e of this.#entries.values()) if (e.lockedUntil > now) n++;
    return n;
  }
}

/** The unit failures are counted by: an IPv4 address, or the /64 network of an IPv6 address. */
export function throttleKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const [head = '', tail] = address.split('::');
  const groups = head === '' ? [] : head.split(':');
  // "a:b::" or "::1" style: the groups after "::" only matter when the head has fewer than four.
  if (groups.length < 4 && tail !== undefined) {
    const rest = tail === '' ? [] : tail.split(':');
    const missing = 8 - groups.length - rest.length;
    groups.push(...Array<string>(Math.max(0, missing)).fill('0'), ...rest);
  }
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
