/**
 * When a cached token stops being good enough, and when the background refresher fires.
 * Pure functions of the clock, so the rules are testable without waiting.
 */

export interface RefreshTiming {
  /** A token is refreshed when it has less than this left (SPEC section 2, default 5 minutes). */
  marginMs: number;
  /** The background refresh fires this long before the margin is reached. */
  leadMs: number;
  /** First wait after a temporary failure, doubled each time up to retryMaxMs. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Never fire sooner than this (guards against an identity provider issuing expires_in: 0). */
  minDelayMs: number;
}

/**
 * The margin, but never more than half the token's lifetime: an identity provider issuing
 * 5-minute tokens would otherwise have every token "expiring" the moment it arrives.
 */
export function effectiveMargin(timing: RefreshTiming, expiresAt: number, obtainedAt: number | undefined): number {
  if (obtainedAt === undefined || obtainedAt >= expiresAt) return timing.marginMs;
  return Math.min(timing.marginMs, (expiresAt - obtainedAt) / 2);
}

export function isFresh(timing: RefreshTiming, now: number, expiresAt: number, obtainedAt: number | undefined): boolean {
  return now < expiresAt - effectiveMargin(timing, expiresAt, obtainedAt);
}

/**
 * Milliseconds until the background refresh: the lead before the margin, but at least half of
 * the time left before the margin (short-lived tokens), and at least minDelayMs.
 */
export function backgroundDelay(timing: RefreshTiming, now: number, expiresAt: number | undefined, obtainedAt: number | undefined): number {
  if (expiresAt === undefined) return timing.minDelayMs;
  const untilMargin = expiresAt - effectiveMargin(timing, expiresAt, obtainedAt) - now;
  const delay = Math.max(untilMargin - timing.leadMs, untilMargin / 2);
  return Math.max(delay, timing.minDelayMs);
}

export function nextRetryDelay(timing: RefreshTiming, previousMs: number): number {
  return previousMs <= 0 ? timing.retryMinMs : Math.min(previousMs * 2, timing.retryMaxMs);
}
