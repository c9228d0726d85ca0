// HTTP load at a fixed offered rate (open loop) with vegeta, pinned to the load generator's core.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summarize, type LoadResult } from './stats.js';
import { tool } from './tools.js';

export interface VegetaRun {
  url: string;
  headers: Record<string, string>;
  rps: number;
  seconds: number;
  cpus: string;
  workDir: string;
}

interface VegetaResult {
  code: number;
  latency: number;
  error: string;
}

function sh(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 1024 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${stderr || err.message}`)) : resolve(stdout)));
    if (input !== undefined) child.stdin?.end(input);
  });
}

export async function vegeta(r: VegetaRun): Promise<LoadResult> {
  const targets = join(r.workDir, 'vegeta-targets.json');
  const header: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(r.headers)) header[k] = [v];
  writeFileSync(targets, `${JSON.stringify({ method: "GET", url: r.url, header })}\n`);
  const bin = join(r.workDir, 'vegeta.bin');
  await sh('taskset', ['-c', r.cpus, tool('vegeta'), 'attack', '-format', 'json', '-targets', targets, '-rate', `${r.rps}/s`, '-duration', `${r.seconds}s`, '-max-workers', '256', '-output', bin]);
  const lines = (await sh(tool('vegeta'), ['encode', '-to', 'json', bin])).split('\n').filter(Boolean);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  for (const line of lines) {
    const res = JSON.parse(line) as VegetaResult;
    statuses[String(res.code)] = (statuses[String(res.code)] ?? 0) + 1;
    if (res.error || res.code === 0) errors++;
    else latencies.push(res.latency / 1e6);
  }
  return summarize(latencies, r.seconds, errors, statuses, r.rps);
}
