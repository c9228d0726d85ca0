// gRPC load with ghz, pinned to the load generator's core. Percentiles are computed from
// every request's latency (ghz's own distribution stops at p99).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { protoIncludeDirs } from '../../src/envoy/protos.js';
import { cpuList } from './cpu-list.js';
import { summarize, type LoadResult } from './stats.js';
import { tool } from './tools.js';

export const CHECK = { proto: 'envoy/service/auth/v3/external_auth.proto', call: 'envoy.service.auth.v3.Authorization.Check' };
export const RLS = { proto: 'envoy/service/ratelimit/v3/rls.proto', call: 'envoy.service.ratelimit.v3.RateLimitService.ShouldRateLimit' };

export interface GhzRun {
  method: { proto: string; call: string };
  address: string;
  /** One message, or an array that ghz sends round-robin. */
  data: unknown;
  seconds: number;
  /** Send exactly this many calls instead of running for `seconds`. */
  total?: number;
  rps?: number;
  concurrency: number;
  connections: number;
  cpus: string;
  workDir: string;
}

interface GhzReport {
  total: number;
  details?: { latency: number; error?: string; status: string }[];
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1024 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && stdout.length === 0) reject(new Error(`${cmd} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

export async function ghz(r: GhzRun): Promise<LoadResult> {
  const dataFile = join(r.workDir, 'ghz-data.json');
  writeFileSync(dataFile, JSON.stringify(r.data));
  const args = [
    '-c', r.cpus, tool('ghz'),
    '--insecure',
    '--proto', r.method.proto,
    '--import-paths', protoIncludeDirs().join(','),
    '--call', r.method.call,
    '--data-file', dataFile,
    '--concurrency', String(r.concurrency),
    '--connections', String(r.connections),
    ...(r.total !== undefined ? ['--total', String(r.total)] : ['--duration', `${r.seconds}s`]),
    '--cpus', String(cpuList(r.cpus).length),
    '--timeout', '5s',
    '--format', 'json',
    ...(r.rps !== undefined ? ['--rps', String(r.rps)] : []),
    r.address,
  ];
  const report = JSON.parse(await run('taskset', args)) as GhzReport;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const messages: Record<string, string> = {};
  // When the duration ends ghz cancels the calls still in flight (at most `concurrency`): those
  // are not the server's errors and are left out.
  let cut = 0;
  for (const d of report.details ?? []) {
    if (d.status !== 'OK') {
      if ((d.status === 'Unavailable' || d.status === 'Canceled') && cut < r.concurrency && /closing|cancel/i.test(d.error ?? '')) {
        cut++;
        continue;
      }
      errors++;
      messages[d.status] ??= d.error ?? '';
    } else latencies.push(d.latency / 1e6);
    statuses[d.status] = (statuses[d.status] ?? 0) + 1;
  }
  const result = summarize(latencies, report.total / 1e9, errors, statuses, r.rps);
  return errors > 0 ? { ...result, errorMessages: messages } : result;
}
