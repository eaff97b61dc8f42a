import { ProxyError } from '../errors.js';

function abortedError(signal: AbortSignal): ProxyError {
  return new ProxyError('aborted', 'waiting for an access token was aborted', { cause: signal.reason });
}

/**
 * Waits for a shared promise until the caller's signal aborts. The promise itself goes on: one
 * client hanging up must not cancel the refresh other clients are waiting for.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
