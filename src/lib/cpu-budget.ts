// How many CPUs this process may use: its scheduler affinity (taskset, a cpuset container) and
// the CFS quota of its cgroup (a Kubernetes CPU limit, systemd CPUQuota=), whichever is smaller.
// Node sizes V8's helper threads without looking at either (server/gc-threads.ts says why that
// matters). Read once at startup: synchronous, never on a request path.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file as text, undefined when it cannot (the files are the kernel's; tests pass their own). */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const CGROUP_ROOT = '/sys/fs/cgroup';

/** `cpu.max` of cgroup v2: "<quota> <period>" or "max <period>". CPUs, or undefined when unlimited or unreadable. */
function cpuMax(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? '').trim().split(/\s+/);
  return quotaCpus(quota, period);
}

function quotaCpus(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined;
}

function min(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** The parent directories of a cgroup path, itself first ("/a/b" -> "/a/b", "/a", ""). */
function selfAndAncestors(path: string): string[] {
  const out: string[] = [];
  let p = path.replace(/\/+$/, '');
  for (;;) {
    out.push(p);
    if (p === '') return out;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

/**
 * The CPUs the cgroup's CFS quota allows (fractional: 1.5 for "150000 100000"), or undefined when
 * there is none. cgroup v2: the smallest `cpu.max` of the process's cgroup and its ancestors (a
 * container sees its own cgroup at the root of its namespace, a systemd service its slice path).
 * cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the cpu controller's cgroup.
 */
export function cgroupCpuLimit(read: ReadText = readText): number | undefined {
  const lines = (read('/proc/self/cgroup') ?? '').split('\n');
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 !== undefined && read(`${CGROUP_ROOT}/cgroup.controllers`) !== undefined) {
    let limit: number | undefined;
    for (const dir of selfAndAncestors(v2.slice(3))) limit = min(limit, cpuMax(read(`${CGROUP_ROOT}${dir}/cpu.max`)));
    return limit;
  }
  const v1 = lines.map((l) => l.split(':')).find((f) => f.length >= 3 && (f[1] ?? '').split(',').includes('cpu'));
  if (!v1) return undefined;
  const path = v1.slice(2).join(':');
  for (const mount of [`${CGROUP_ROOT}/cpu,cpuacct`, `${CGROUP_ROOT}/cpu`]) {
    // The path as the host names it, else the mount's root (a container's own cgroup).
    for (const dir of path === '/' ? [mount] : [`${mount}${path}`, mount]) {
      const quota = read(`${dir}/cpu.cfs_quota_us`);
      if (quota !== undefined) return quotaCpus(quota.trim(), read(`${dir}/cpu.cfs_period_us`)?.trim());
    }
  }
  return undefined;
}

/** Whole CPUs this process may use, at least 1: the affinity, capped by the cgroup quota (rounded up). */
export function cpuBudget(opts: { readonly affinity?: number; readonly read?: ReadText } = {}): number {
  const affinity = opts.affinity ?? availableParallelism();
  const quota = cgroupCpuLimit(opts.read);
  return Math.max(1, quota === undefined ? affinity : Math.min(affinity, Math.ceil(quota)));
}

/** Service processes for `server.workers` set to `configured`; 0: one per CPU this process may use. */
export function workerCount(configured: number, budget: () => number = cpuBudget): number {
  return configured === 0 ? budget() : configured;
}

/** The CPUs each service process has to itself with `server.workers` set to `configured`. */
export function cpusPerWorker(configured: number, budget: () => number = cpuBudget): number {
  const cpus = budget();
  return cpus / workerCount(configured, () => cpus);
}
