// Deterministic pseudo-random numbers for generated test inputs: a failure can be replayed from its seed.

/** Numbers in [0, 1) from `seed` (a linear congruential generator). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Integers in [0, n) from `seed`. */
export function rngInt(seed: number): (n: number) => number {
  const r = rng(seed);
  return (n) => Math.floor(r() * n);
}
