import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { abortReason, isTimeout, startDeadline } from '../../src/net/deadline.js';

describe('startDeadline', () => {
  it('aborts with a ProxyError of the given code when the time is up', async () => {
    const deadline = startDeadline(10, 'upstream_unavailable', 'too slow');
    await new Promise((r) => setTimeout(r, 30));
    expect(deadline.signal.aborted).toBe(true);
    const reason = abortReason(deadline.signal);
    expect(reason.code).toBe('upstream_unavailable');
    expect(reason.message).toBe('too slow');
    expect(isTimeout(reason)).toBe(true);
  });

  it('follows the first of several parents, with its reason', () => {
    const a = new AbortController();
    const b = new AbortController();
    const deadline = startDeadline(60_000, 'limit_exceeded', 'late', [a.signal, b.signal]);
    const reason = new ProxyError('aborted', 'shutting down');
    b.abort(reason);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal.reason).toBe(reason);
    expect(isTimeout(deadline.signal.reason)).toBe(false);
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    deadline.clear();
  });

  it('is aborted at once when a parent already is', () => {
    const parent = new AbortController();
    parent.abort(new ProxyError('aborted', 'gone'));
    const deadline = startDeadline(60_000, 'limit_exceeded', 'late', parent.signal);
    expect(abortReason(deadline.signal).message).toBe('gone');
    deadline.clear();
  });

  it('leaves nothing behind on a long-lived parent once cleared (the shutdown signal of every session)', () => {
    const shutdown = new AbortController();
    setMaxListeners(0, shutdown.signal);
    const deadlines = Array.from({ length: 1000 }, () => startDeadline(60_000, 'limit_exceeded', 'late', shutdown.signal));
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1000);
    for (const d of deadlines) d.clear();
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    shutdown.abort();
    expect(deadlines.some((d) => d.signal.aborted)).toBe(false);
  });

  it('lets go of its signal when cleared: later reads get one that never aborts', () => {
    const parent = new AbortController();
    const deadline = startDeadline(10, 'limit_exceeded', 'late', parent.signal);
    const before = deadline.signal;
    deadline.clear();
    expect(deadline.signal).not.toBe(before);
    parent.abort(new ProxyError('aborted', 'gone'));
    expect(deadline.signal.aborted).toBe(false);
    expect(before.aborted).toBe(false);
  });

  it('keeps an aborted signal, with its reason, after clear', () => {
    const parent = new AbortController();
    const deadline = startDeadline(60_000, 'limit_exceeded', 'late', parent.signal);
    parent.abort(new ProxyError('aborted', 'gone'));
    deadline.clear();
    expect(deadline.signal.aborted).toBe(true);
    expect(abortReason(deadline.signal).message).toBe('gone');
  });
});
