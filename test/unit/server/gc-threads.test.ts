// Which GC options a service process starts with for the CPUs it has.
import { describe, expect, it } from 'vitest';
import { gcFlags, gcMode, HEAP_GROWING, heapGrowing, serviceGcFlags, SINGLE_THREADED_GC } from '../../../src/server/gc-threads.js';

describe('gcFlags', () => {
  it('asks for single-threaded GC and a fixed heap growing factor at one CPU or less per process', () => {
    expect(HEAP_GROWING).toBe('--heap-growing-percent=10');
    expect(gcFlags(1, [])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
    expect(gcFlags(0.5, ['--import', 'x.mjs'])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
  });

  it('leaves V8 its helper threads with more than one CPU per process', () => {
    expect(gcFlags(2, [])).toEqual([]);
    expect(gcFlags(1.5, [])).toEqual([]);
  });

  it("never overrides the operator's own GC threading option", () => {
    const own = ['--single-threaded-gc', '--no-single-threaded-gc', '--v8-pool-size=4', '--v8-pool-size', '--concurrent-marking', '--no-concurrent-marking', '--no-parallel-scavenge', '--single_threaded_gc',
      // V8's other spellings of "no", and the options that imply single-threaded GC.
      '--no_concurrent_marking', '--noconcurrent-marking', '--single-threaded', '--predictable'];
    for (const o of own) expect(gcFlags(1, [o])).toEqual([HEAP_GROWING]);
    // Options that only look alike decide nothing.
    expect(gcFlags(1, ['--single-threaded-gcx'])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
    expect(gcFlags(1, ['--max-semi-space-size=16'])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
    expect(gcFlags(1, ['--v8-pool-sizes=2'])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
  });

  it("never overrides the operator's own heap growing factor, in either spelling", () => {
    for (const own of [['--heap-growing-percent=50'], ['--heap_growing_percent=0']]) expect(gcFlags(1, own)).toEqual([SINGLE_THREADED_GC]);
    expect(gcFlags(1, ['--single-threaded-gc', '--heap-growing-percent=20'])).toEqual([]);
    expect(gcFlags(1, ['--heap-growing-percentage=5'])).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
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

describe('heapGrowing', () => {
  it("says how the heap's limit grows: a fixed percent, or V8's own factor", () => {
    expect(heapGrowing([HEAP_GROWING])).toBe('10%');
    expect(heapGrowing(['--heap_growing_percent=25'])).toBe('25%');
    // The last one given is the one V8 keeps.
    expect(heapGrowing(['--heap-growing-percent=50', '--heap-growing-percent=10'])).toBe('10%');
    // 0 is V8's default: its own factor.
    expect(heapGrowing(['--heap-growing-percent=0'])).toBe('v8');
    expect(heapGrowing([])).toBe('v8');
    expect(heapGrowing(['--single-threaded-gc'])).toBe('v8');
  });
});

describe('serviceGcFlags', () => {
  it("sees the operator's GC option in NODE_OPTIONS too (where --v8-pool-size is allowed)", () => {
    // So many processes that each has less than one CPU, whatever this machine's: an operator's
    // threading option, in NODE_OPTIONS or on the command line, means no threading option is added.
    const many = 1_000_000;
    expect(serviceGcFlags([], '--max-old-space-size=512 --v8-pool-size=2', many)).toEqual([HEAP_GROWING]);
    expect(serviceGcFlags(['--v8-pool-size=2'], '', many)).toEqual([HEAP_GROWING]);
    expect(serviceGcFlags([], '', many)).toEqual([SINGLE_THREADED_GC, HEAP_GROWING]);
  });
});
