// Records keyed by data (map keys, file paths, query parameters): a key such as `__proto__` or
// `constructor` must stay a key, never reach an object's prototype.

/** Sets `k` as an own data property, whatever its name (an assignment to `__proto__` would set the prototype). */
export function setOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}

/** A record without a prototype: `constructor`, `toString` or `__proto__` are just keys. */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
