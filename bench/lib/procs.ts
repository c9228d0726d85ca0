// Processes under test: started pinned to a CPU set (taskset), waited for, stopped. Pinning
// keeps the server and the load generator off each other's core, as the comparisons require.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  /** The last lines the process wrote (for error messages). */
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartOptions {
  cpus?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Keep stdout (default: discarded, so a chatty log costs the server what it costs in production). */
  captureStdout?: boolean;
}

/** `taskset -c <cpus> cmd args...`; stderr is kept (bounded) for diagnostics. */
export function startPinned(name: string, cmd: string, args: string[], o: StartOptions = {}): Proc {
  const argv = o.cpus !== undefined ? ['-c', o.cpus, cmd, ...args] : args;
  const child = spawn(o.cpus !== undefined ? 'taskset' : cmd, argv, {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', o.captureStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-8000);
  };
  child.stderr?.on('data', keep);
  child.stdout?.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    name,
    child,
    output: () => tail,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** Moves every thread of a running process onto `cpus` (for processes another helper spawned). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Resolves once `port` accepts connections; rejects when the process exits or time runs out. */
export async function waitForPort(proc: Proc, port: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited (${proc.child.exitCode}):\n${proc.output()}`);
    if (await portOpen(port)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name}: port ${port} not open after ${timeoutMs} ms:\n${proc.output()}`);
}

/** CPU time (user + system, all threads) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesized command name; utime and stime are the 12th and 13th of them.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** Resident set size of a process, in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
