// The CPUs a process may use: affinity capped by the cgroup's CFS quota, read from files the tests hand in.
import { describe, expect, it } from 'vitest';
import { cgroupCpuLimit, cpuBudget, cpusPerWorker, workerCount, type ReadText } from '../../../src/lib/cpu-budget.js';

const files = (f: Record<string, string>): ReadText => (p) => f[p];

const V2 = { '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n' };

describe('cgroupCpuLimit', () => {
  it('reads cgroup v2 cpu.max of the container (its cgroup at the namespace root)', () => {
    expect(cgroupCpuLimit(files({ ...V2, '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '100000 100000\n' }))).toBe(1);
    expect(cgroupCpuLimit(files({ ...V2, '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
  });

  it('takes the smallest quota of the cgroup and its ancestors (a systemd service in a limited slice)', () => {
    const read = files({
      ...V2,
      '/proc/self/cgroup': '0::/system.slice/authz.service\n',
      '/sys/fs/cgroup/system.slice/authz.service/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/system.slice/cpu.max': '50000 100000\n',
    });
    expect(cgroupCpuLimit(read)).toBe(0.5);
  });

  it('is undefined when cpu.max says max, or cannot be read', () => {
    expect(cgroupCpuLimit(files({ ...V2, '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
    expect(cgroupCpuLimit(files({ ...V2, '/proc/self/cgroup': '0::/\n' }))).toBeUndefined();
    expect(cgroupCpuLimit(files({}))).toBeUndefined();
  });

  it('reads cgroup v1 cfs quota and period, at the host path or at the mount root (a container)', () => {
    const host = files({
      '/proc/self/cgroup': '5:memory:/x\n4:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n',
      '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_quota_us': '200000\n',
      '/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1/c1/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuLimit(host)).toBe(2);
    const container = files({
      '/proc/self/cgroup': '4:cpu,cpuacct:/docker/abc\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuLimit(container)).toBe(1);
  });

  it('is undefined for a v1 quota of -1 (no limit); a hybrid host without v2 controllers reads v1', () => {
    const read = files({
      '/proc/self/cgroup': '4:cpu,cpuacct:/\n0::/\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
      '/sys/fs/cgroup/cpu.max': '100000 100000\n', // not a v2 root: no cgroup.controllers beside it
    });
    expect(cgroupCpuLimit(read)).toBeUndefined();
  });
});

describe('cpuBudget', () => {
  const quota = (q: string): ReadText => files({ ...V2, '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': q });
  it('is the affinity capped by the quota, rounded up, at least 1', () => {
    expect(cpuBudget({ affinity: 8, read: quota('100000 100000') })).toBe(1);
    expect(cpuBudget({ affinity: 8, read: quota('150000 100000') })).toBe(2);
    expect(cpuBudget({ affinity: 1, read: quota('400000 100000') })).toBe(1);
    expect(cpuBudget({ affinity: 4, read: quota('max 100000') })).toBe(4);
    expect(cpuBudget({ affinity: 4, read: quota('10000 100000') })).toBe(1);
  });

  it('reads this machine without failing', () => {
    expect(cpuBudget()).toBeGreaterThanOrEqual(1);
  });
});

describe('workerCount', () => {
  it('is the configured count, or one per CPU for 0 (reading the budget only then)', () => {
    let reads = 0;
    const budget = (): number => {
      reads++;
      return 6;
    };
    expect(workerCount(3, budget)).toBe(3);
    expect(reads).toBe(0);
    expect(workerCount(0, budget)).toBe(6);
  });
});

describe('cpusPerWorker', () => {
  it('shares the budget among the configured workers; workers: 0 is one CPU each', () => {
    expect(cpusPerWorker(1, () => 4)).toBe(4);
    expect(cpusPerWorker(2, () => 4)).toBe(2);
    expect(cpusPerWorker(4, () => 2)).toBe(0.5);
    expect(cpusPerWorker(0, () => 8)).toBe(1);
    expect(cpusPerWorker(1, () => 1)).toBe(1);
  });
});
