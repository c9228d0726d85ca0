// The bench's core accounting: which cores a taskset list names, and how idle they were between
// two /proc/stat readings (the "idle %" columns of docs/performance.md).
import { describe, expect, it } from 'vitest';
import { coreTimes, cpuList, idlePercent, machineLines, stealPercent, type Machine } from '../../../bench/lib/machine.js';

describe('bench core accounting', () => {
  it('reads taskset lists with single cores, ranges and both', () => {
    expect(cpuList('1')).toEqual([1]);
    expect(cpuList('0,2')).toEqual([0, 2]);
    expect(cpuList('2-3')).toEqual([2, 3]);
    expect(cpuList('0-1,3')).toEqual([0, 1, 3]);
  });

  it('counts idle and iowait as idle, and steal as not idle', () => {
    expect(idlePercent({ total: 1000, idle: 300 }, { total: 2000, idle: 550 })).toBe(25);
    expect(idlePercent({ total: 1000, idle: 300 }, { total: 1000, idle: 300 })).toBeUndefined();
    expect(idlePercent(undefined, { total: 2000, idle: 550 })).toBeUndefined();
    expect(stealPercent({ total: 1000, steal: 10 }, { total: 2000, steal: 60 })).toBe(5);
  });

  it('reads this machine\'s core 0, and sums the cores a list names', () => {
    const one = coreTimes('0');
    // Core 0 named twice, read after `one`: counters only grow, so at least twice one reading.
    const twice = coreTimes('0,0');
    expect(one?.total).toBeGreaterThan(0);
    expect(one!.idle).toBeLessThanOrEqual(one!.total);
    expect(twice!.total).toBeGreaterThanOrEqual(2 * one!.total);
    expect(coreTimes('9999')).toBeUndefined();
  });
});

describe('machineLines', () => {
  const m = (cpu: string): Machine => ({ cpu, cores: 2, memoryGiB: 24, kernel: '6.1', versions: {} });
  it('names one machine, or each machine with the scenarios that ran on it', () => {
    expect(machineLines([{ scenario: 'check', machine: m('A') }, undefined, { scenario: 'envoy', machine: m('A') }])).toEqual(['- Machine: A, 2 cores, 24 GiB, Linux 6.1.']);
    expect(machineLines([{ scenario: 'check', machine: m('A') }, { scenario: 'ratelimit', machine: m('B') }, { scenario: 'envoy', machine: m('A') }])).toEqual([
      '- Machines (the scenarios ran on 2): A, 2 cores, 24 GiB, Linux 6.1 for check, envoy; B, 2 cores, 24 GiB, Linux 6.1 for ratelimit.',
    ]);
  });
});
