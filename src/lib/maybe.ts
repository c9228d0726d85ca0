// A result that is there at once or later. The Check path returns values directly when nothing has to
// wait (a cached token, a compiled policy, a cached minted token): each `async` stage cost a promise,
// its microtask hop and its closure per Check, which were about a fifth of the bytes allocated per
// Check (docs/performance.md). The rule for every function that returns a Maybe: a value may come
// back synchronously, a failure should not - it is a rejected promise, so callers handle errors in
// one place (`.then(ok, fail)` or `await` in try). The verifiers keep to it; the pipeline does not
// rely on it: CheckPipeline.check turns any synchronous throw of its stages into a rejection.

export type Maybe<T> = T | Promise<T>;

/** Native promises only: what every Maybe producer here returns (no thenables). */
export function isPromise<T>(v: Maybe<T>): v is Promise<T> {
  return v instanceof Promise;
}

/** A caught error as a rejection (the Maybe rule above), passed on as thrown, as an async function would. */
export function rejected<T>(err: unknown): Promise<T> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
  return Promise.reject(err);
}
