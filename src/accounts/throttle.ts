/**
 * Slows down and then refuses repeated login failures from one client address (SPEC
 * section 4). The right password from another address is never affected.
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
  freeFailures: 3,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  lockoutAfter: 10,
  lockoutMs: 15 * 60_000,
  windowMs: 15 * 60_000,
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
    const e = this.#entries.get(address);
    if (e && this.#now() - e.lastFailure > this.#options.windowMs && e.lockedUntil <= this.#now()) {
      this.#entries.delete(address);
      return undefined;
    }
    return e;
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
      this.#entries.set(address, e);
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
    this.#entries.delete(address);
  }

  /** Addresses currently locked out (for metrics and the status page). */
  lockedOutCount(): number {
    let n = 0;
    for (const address of this.#entries.keys()) if (this.isLockedOut(address)) n++;
    return n;
  }
}
