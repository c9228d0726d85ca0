// The machine and versions a result was measured on (printed into docs/performance.md).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { pluginBinary, pluginPeer } from './servers.js';
import { tool } from './tools.js';
import { cpuList } from './cpu-list.js';
import { envoyBinary } from '../../test/helpers/envoy.js';
import { opaBinary } from '../../test/helpers/opa.js';

export { cpuList };

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  versions: Record<string, string>;
}

function version(cmd: () => string, args: string[], pattern: RegExp): string {
  try {
    const out = execFileSync(cmd(), args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    return pattern.exec(out)?.[1] ?? out.trim().split('\n')[0] ?? '?';
  } catch {
    return 'not installed';
  }
}

/** The module version a Go binary was built at (`go version -m`): ghz and vegeta print none of their own. */
function goModuleVersion(bin: () => string): string {
  try {
    const out = execFileSync('go', ['version', '-m', bin()], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    return /^\tmod\t\S+\t(\S+)/m.exec(out)?.[1] ?? '?';
  } catch {
    return 'not installed';
  }
}

function pluginVersion(): string {
  const bin = pluginBinary();
  return bin ? pluginPeer(bin).version : 'not installed';
}

export function machineInfo(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: execFileSync('uname', ['-r']).toString().trim(),
    versions: {
      node: process.versions.node,
      go: version(() => 'go', ['version'], /go(\d+\.\d+(?:\.\d+)?)/),
      envoy: version(envoyBinary, ['--version'], /version: [0-9a-f]+\/(\d+\.\d+\.\d+)/),
      opa: version(opaBinary, ['version'], /Version: (\S+)/),
      redis: version(() => 'redis-server', ['--version'], /v=(\S+)/),
      ghz: goModuleVersion(() => tool('ghz')),
      vegeta: goModuleVersion(() => tool('vegeta')),
      ratelimit: goModuleVersion(() => tool('ratelimit')),
      'opa-envoy-plugin': pluginVersion(),
    },
  };
}

/** The machine's CPU time so far, in clock ticks (/proc/stat's `cpu` line): all of it, and stolen. */
export interface CpuTimes {
  total: number;
  steal: number;
}

/**
 * The first eight counters of one /proc/stat line (`cpu` for the machine, `cpu3` for one core):
 * user nice system idle iowait irq softirq steal (guest time is already in user and nice).
 */
function statFields(stat: string, line: string): number[] | undefined {
  const fields = new RegExp(`^${line} +(.*)$`, 'm').exec(stat)?.[1]?.trim().split(/\s+/).map(Number);
  return fields && fields.length >= 8 ? fields.slice(0, 8) : undefined;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

export function cpuTimes(): CpuTimes | undefined {
  try {
    const fields = statFields(readFileSync('/proc/stat', 'utf8'), 'cpu');
    return fields ? { total: sum(fields), steal: fields[7]! } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Steal between two readings, as a percentage of the machine's CPU time: time the hypervisor
 * gave this VM's cores to someone else. The bench's figures assume it near zero; a run with
 * several percent is a noisy run (docs/performance.md prints it per scenario).
 */
export function stealPercent(from: CpuTimes | undefined, to: CpuTimes | undefined): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return Math.round(((to.steal - from.steal) / (to.total - from.total)) * 1000) / 10;
}

/** Clock ticks of the given cores so far (/proc/stat's `cpuN` lines): all, and idle (idle + iowait). */
export function coreTimes(cpus: string): { total: number; idle: number } | undefined {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    let total = 0;
    let idle = 0;
    for (const c of cpuList(cpus)) {
      const fields = statFields(stat, `cpu${c}`);
      if (!fields) return undefined;
      total += sum(fields);
      idle += fields[3]! + fields[4]!;
    }
    return { total, idle };
  } catch {
    return undefined;
  }
}

/** Idle share of cores between two readings, percent (steal counts as not idle: the core was not free for us). */
export function idlePercent(from: ReturnType<typeof coreTimes>, to: ReturnType<typeof coreTimes>): number | undefined {
  if (!from || !to || to.total <= from.total) return undefined;
  return Math.round(((to.idle - from.idle) / (to.total - from.total)) * 1000) / 10;
}

/** The machine line of "How it is measured": one machine, or each machine with the scenarios that ran on it. */
export function machineLines(results: readonly ({ scenario?: string; machine: Machine } | undefined)[]): string[] {
  const describe = (m: Machine): string => `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}`;
  const byMachine = new Map<string, string[]>();
  for (const r of results) {
    if (r === undefined) continue;
    const d = describe(r.machine);
    byMachine.set(d, [...(byMachine.get(d) ?? []), r.scenario ?? '?']);
  }
  if (byMachine.size <= 1) return [...byMachine.keys()].map((d) => `- Machine: ${d}.`);
  return [`- Machines (the scenarios ran on ${byMachine.size}): ${[...byMachine].map(([d, names]) => `${d} for ${names.join(', ')}`).join('; ')}.`];
}
