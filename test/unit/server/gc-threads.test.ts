// Which GC options a service process starts with for the CPUs it has.
import { describe, expect, it } from 'vitest';
import { gcFlags, gcMode, serviceGcFlags, SINGLE_THREADED_GC } from '../../../src/server/gc-threads.js';

describe('gcFlags', () => {
  it('asks for single-threaded GC at one CPU or less per process', () => {
    expect(gcFlags(1, [])).toEqual([SINGLE_THREADED_GC]);
    expect(gcFlags(0.5, ['--import', 'x.mjs'])).toEqual([SINGLE_THREADED_GC]);
  });

  it('leaves V8 its helper threads with more than one CPU per process', () => {
    expect(gcFlags(2, [])).toEqual([]);
    expect(gcFlags(1.5, [])).toEqual([]);
  });

  it("never overrides the operator's own GC threading option", () => {
    const own = ['--single-threaded-gc', '--no-single-threaded-gc', '--v8-pool-size=4', '--v8-pool-size', '--concurrent-marking', '--no-concurrent-marking', '--no-parallel-scavenge', '--single_threaded_gc',
      // V8's other spellings of "no", and the options that imply single-threaded GC.
      '--no_concurrent_marking', '--noconcurrent-marking', '--single-threaded', '--predictable'];
    for (const o of own) expect(gcFlags(1, [o])).toEqual([]);
    // Options that only look alike decide nothing.
    expect(gcFlags(1, ['--single-threaded-gcx'])).toEqual([SINGLE_THREADED_GC]);
    expect(gcFlags(1, ['--max-semi-space-size=16'])).toEqual([SINGLE_THREADED_GC]);
    expect(gcFlags(1, ['--v8-pool-sizes=2'])).toEqual([SINGLE_THREADED_GC]);
  });
});

describe('gcMode', () => {
  it('says which mode a process runs in', () => {
    expect(gcMode([SINGLE_THREADED_GC])).toBe('single_threaded');
    expect(gcMode(['--import', 'x.mjs', '--single_threaded_gc'])).toBe('single_threaded');
    expect(gcMode(['--no-single-threaded-gc'])).toBe('concurrent');
    // V8 implies it from these.
    expect(gcMode(['--single-threaded'])).toBe('single_threaded');
    expect(gcMode(['--predictable'])).toBe('single_threaded');
    expect(gcMode([])).toBe('concurrent');
  });
});

describe('serviceGcFlags', () => {
  it("sees the operator's GC option in NODE_OPTIONS too (where --v8-pool-size is allowed)", () => {
    // Whatever this machine's CPUs, an operator's option means nothing is added.
    expect(serviceGcFlags([], '--max-old-space-size=512 --v8-pool-size=2')).toEqual([]);
    expect(serviceGcFlags(['--v8-pool-size=2'], '')).toEqual([]);
  });
});
