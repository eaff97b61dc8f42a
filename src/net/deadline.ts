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
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined = setTimeout(() => {
    const cause = new DOMException(`timed out after ${ms} ms`, 'TimeoutError');
    controller.abort(new ProxyError(code, message, { cause }));
  }, ms);
  timer.unref();
  const parents = parent === undefined ? [] : Array.isArray(parent) ? parent : [parent as AbortSignal];
  let unlink: (() => void) | undefined = followParents(controller, parents);
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      unlink?.();
      // A cleared deadline may be held for the rest of a session (the login deadline is): let
      // the timer, its callback and the parents go.
      timer = undefined;
      unlink = undefined;
    },
  };
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
