import { describe, expect, it } from 'vitest';
import { backgroundDelay, effectiveMargin, isFresh, nextRetryDelay, type RefreshTiming } from '../../../src/tokens/refresh-timing.js';

const MIN = 60_000;
const timing: RefreshTiming = { marginMs: 5 * MIN, leadMs: MIN, retryMinMs: 30_000, retryMaxMs: 10 * MIN, minDelayMs: 5_000 };

describe('refresh timing', () => {
  it('uses the margin for normal tokens, and half the lifetime for short ones', () => {
    expect(effectiveMargin(timing, 60 * MIN, 0)).toBe(5 * MIN);
    expect(effectiveMargin(timing, 4 * MIN, 0)).toBe(2 * MIN);
    expect(effectiveMargin(timing, 60 * MIN, undefined)).toBe(5 * MIN);
  });

  it('calls a token fresh until the margin', () => {
    expect(isFresh(timing, 55 * MIN - 1, 60 * MIN, 0)).toBe(true);
    expect(isFresh(timing, 55 * MIN, 60 * MIN, 0)).toBe(false);
  });

  it('fires the background refresh one lead before the margin, never in a hot loop', () => {
    expect(backgroundDelay(timing, 0, 60 * MIN, 0)).toBe(54 * MIN);
    // Short-lived token: half the time left before the margin.
    expect(backgroundDelay(timing, 0, 2 * MIN, 0)).toBe(30_000);
    // Already inside the margin, or expires_in 0: the floor.
    expect(backgroundDelay(timing, 58 * MIN, 60 * MIN, 0)).toBe(5_000);
    expect(backgroundDelay(timing, 0, 0, 0)).toBe(5_000);
    expect(backgroundDelay(timing, 0, undefined, undefined)).toBe(5_000);
  });

  it('doubles the retry delay up to the maximum', () => {
    const delays = [0, 0, 0, 0, 0, 0, 0].reduce<number[]>((acc) => [...acc, nextRetryDelay(timing, acc.at(-1) ?? 0)], []);
    expect(delays).toEqual([30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000]);
  });
});
