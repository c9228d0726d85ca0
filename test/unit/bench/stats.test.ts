// The bench's own arithmetic: percentiles and summaries must be right for its tables to be.
import { describe, expect, it } from 'vitest';
import { percentile, summarize } from '../../../bench/lib/stats.js';

describe('bench statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(500);
    expect(percentile(sorted, 99)).toBe(990);
    expect(percentile(sorted, 99.9)).toBe(999);
    expect(percentile(sorted, 100)).toBe(1000);
    expect(percentile([7], 99.9)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarizes a run: throughput over the measured seconds, percentiles of unsorted latencies', () => {
    const latencies = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    const r = summarize(latencies, 2, 1, { OK: 10, Internal: 1 }, 5);
    expect(r).toMatchObject({ offered: 5, throughput: 5, requests: 10, errors: 1, p50: 5, p90: 9, p99: 10, p999: 10 });
  });
});
