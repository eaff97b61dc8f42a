import { ProxyError, type ErrorCode } from '../errors.js';

/** A time limit as an AbortSignal, cleared once the guarded work is done. */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

/**
 * Starts a deadline that aborts with a ProxyError of the given code (its cause a TimeoutError,
 * so `isTimeout` can tell a timeout from other aborts). When `parent` is given, the signal also
 * aborts with the parent's reason. The timer is unref'd: it never keeps the process alive.
 */
export function startDeadline(ms: number, code: ErrorCode, message: string, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    const cause = new DOMException(`timed out after ${ms} ms`, 'TimeoutError');
    controller.abort(new ProxyError(code, message, { cause }));
  }, ms);
  timer.unref();
  const signal = parent ? AbortSignal.any([parent, controller.signal]) : controller.signal;
  return { signal, clear: () => clearTimeout(timer) };
}

/** True for the errors a Deadline aborts with. */
export function isTimeout(err: unknown): boolean {
  return err instanceof ProxyError && err.cause instanceof DOMException && err.cause.name === 'TimeoutError';
}

/** The reason of an aborted signal as a ProxyError (`aborted` unless it already is one). */
export function abortReason(signal: AbortSignal): ProxyError {
  const reason: unknown = signal.reason;
  return reason instanceof ProxyError ? reason : new ProxyError('aborted', 'Operation aborted', { cause: reason });
}
