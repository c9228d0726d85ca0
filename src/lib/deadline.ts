// Bounding work by a deadline: the caller gets an UnavailableError instead of waiting past its budget.
import { UnavailableError } from './errors.js';
import type { Stop } from './stop.js';
import { isPromise, type Maybe } from './maybe.js';

/** Milliseconds left for a call: our own budget, shortened by the caller's gRPC deadline minus a margin. */
export function budgetMs(ownBudgetMs: number, callerDeadline: Date | number, now = Date.now(), marginMs = 5): number {
  const deadline = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
  if (!Number.isFinite(deadline)) return ownBudgetMs;
  return Math.max(0, Math.min(ownBudgetMs, deadline - now - marginMs));
}

const noop = (): void => undefined;
const cancelReason = (reason: unknown): Error => (reason instanceof Error ? reason : new UnavailableError('cancelled', 'the call was cancelled'));

/**
 * Resolves like `work`, or rejects with `deadline_exceeded` once `ms` have passed. Work that is
 * already done (a value, not a promise) is returned as it is: nothing to wait for, no timer. With the work's
 * own `stop`: the deadline stops it (so the work stops too), and a stop from elsewhere (the caller
 * cancelled) rejects at once with its reason instead of waiting for the work.
 * One per Check: a single promise settled by whichever comes first (no Promise.race, no finally).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, stop?: Stop): Promise<T>;
export function withDeadline<T>(work: Maybe<T>, ms: number, stop?: Stop): Maybe<T>;
export function withDeadline<T>(work: Maybe<T>, ms: number, stop?: Stop): Maybe<T> {
  if (!isPromise(work)) return stop?.aborted ? Promise.reject(cancelReason(stop.reason)) : work;
  return new Promise<T>((resolve, reject) => {
    if (stop?.aborted) {
      // The work is not waited for, but its rejection is still handled (an unhandled one ends the process).
      work.then(undefined, noop);
      reject(cancelReason(stop.reason));
      return;
    }
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      unlisten?.();
      return true;
    };
    const timer = setTimeout(() => {
      const err = new UnavailableError('deadline_exceeded', `no decision within ${ms} ms`);
      // The work's stop runs its listeners, ours among them: settle first, so ours is a no-op.
      if (!settle()) return;
      stop?.abort(err);
      reject(err);
    }, ms);
    const unlisten = stop?.onAbort((reason) => {
      if (settle()) reject(cancelReason(reason));
    });
    work.then(
      (v) => {
        if (settle()) resolve(v);
      },
      (err: unknown) => {
        // The work's own rejection, passed on as it is (as Promise.race would).
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        if (settle()) reject(err);
      },
    );
  });
}
