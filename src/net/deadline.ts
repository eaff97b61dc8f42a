import { ProxyError, type ErrorCode } from '../errors.js';

/** A time limit as an AbortSignal, cleared once the guarded work is done. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Stops the timer and unlinks the parents. Always call it (in a `finally`). */
  clear(): void;
}

/**
 * Starts a deadline that aborts with a ProxyError of the given code (its cause a TimeoutError,
 * so `isTimeout` can tell a timeout from other aborts). When parents are given, the signal also
 * aborts with the reason of the first parent that aborts, until `clear()`. The timer is
 * unref'd: it never keeps the process alive.
 */
export function startDeadline(ms: number, code: ErrorCode, message: string, parent?: AbortSignal | readonly AbortSignal[]): Deadline {
  const parents = parent === undefined ? [] : Array.isArray(parent) ? parent : [parent as AbortSignal];
  return new TimedDeadline(ms, code, message, parents);
}

class TimedDeadline implements Deadline {
  /** Let go by clear() unless it aborted: a cleared deadline may be held for the rest of a session (the login deadline is). */
  #controller: AbortController | undefined = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #unlink: (() => void) | undefined;

  constructor(ms: number, code: ErrorCode, message: string, parents: readonly AbortSignal[]) {
    const controller = this.#controller as AbortController;
    this.#timer = setTimeout(() => {
      const cause = new DOMException(`timed out after ${ms} ms`, 'TimeoutError');
      controller.abort(new ProxyError(code, message, { cause }));
    }, ms);
    this.#timer.unref();
    this.#unlink = followParents(controller, parents);
  }

  /** After clear() without an abort: a signal that never aborts (an AbortSignal and its listener maps are ~0.5 kB). */
  get signal(): AbortSignal {
    return this.#controller?.signal ?? new AbortController().signal;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#unlink?.();
    this.#timer = undefined;
    this.#unlink = undefined;
    if (!this.#controller?.signal.aborted) this.#controller = undefined;
  }
}

/**
 * Aborts `controller` with the reason of the first parent that aborts; returns the function
 * that removes the listeners again. Not AbortSignal.any(): on Node 20 every call leaves a
 * WeakRef in each parent's set of dependants that is never pruned (about 55 bytes per call,
 * measured), so a parent that lives as long as the process, like the shutdown signal every
 * session hangs off, grew with each session ever served (found with bench/ heap snapshots).
 */
function followParents(controller: AbortController, parents: readonly AbortSignal[]): () => void {
  const aborted = parents.find((p) => p.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return () => undefined;
  }
  const unlink = (): void => {
    for (const p of parents) p.removeEventListener('abort', onAbort);
  };
  function onAbort(this: AbortSignal): void {
    unlink();
    controller.abort(this.reason);
  }
  for (const p of parents) p.addEventListener('abort', onAbort, { once: true });
  return unlink;
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
