/**
 * How long the event loop stood still at most while `work` ran: the longest gap of a 2 ms timer,
 * a stop at the very end included (the timer would not fire again to show it).
 */
export async function longestStop<T>(work: () => Promise<T>): Promise<{ result: T; longestMs: number; tookMs: number }> {
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 2);
  const started = performance.now();
  try {
    const result = await work();
    return { result, longestMs: Math.max(longest, performance.now() - last), tookMs: performance.now() - started };
  } finally {
    clearInterval(tick);
  }
}

/**
 * longestStop, with `work` run a second time when the first run's longest gap is `boundMs` or
 * more: a stall of the whole (busy, shared) machine seldom comes twice in a row, a stop of the
 * code under test always does. Returns the run that is judged.
 */
export async function longestStopRetried<T>(work: () => Promise<T>, boundMs: number): Promise<{ result: T; longestMs: number; tookMs: number }> {
  const first = await longestStop(work);
  return first.longestMs < boundMs ? first : longestStop(work);
}
