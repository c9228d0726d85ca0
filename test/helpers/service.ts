// Starting envoy-authz for tests: in-process (startService) or as a real process (src/main.ts via tsx).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfigFile } from '../../src/config/loader.js';
import { startService, type RunningService } from '../../src/server/service.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { lineMeter, observeLine } from './line-guard.js';
import { capture } from './log.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export async function startInProcess(
  configPath: string,
): Promise<RunningService & { logs: ReturnType<typeof capture> }> {
  const logs = capture();
  const svc = await startService(await loadConfigFile(configPath), createLogger('info', logs.stream));
  return Object.assign(svc, { logs });
}

/** Config YAML for tests. The admin listener gets a free port unless the test sets one, since
 *  test files run in parallel and the default (9192) can only be bound once. */
export function configYaml(obj: Record<string, unknown>): string {
  return stringify({ admin: { address: '127.0.0.1:0' }, ...obj });
}

export interface ServiceProcess {
  child: ChildProcessWithoutNullStreams;
  address: string;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `node --import tsx src/main.ts ARGS`; resolves once it logs `started` (or rejects if it exits). */
export function spawnService(args: string[], env: Record<string, string> = {}): Promise<ServiceProcess> {
  return spawnCommand(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), ...args], env);
}

/** Runs a command that starts the service (a launcher, `taskset`) in `cwd`; resolves once the service logs `started`. */
export function spawnCommand(cmd: string, argv: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<ServiceProcess> {
  const child = spawn(cmd, argv, {
    cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  const lines: Record<string, unknown>[] = [];
  let err = '';
  const errMeter = lineMeter('a service process (stderr)');
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    errMeter.write(d);
  });
  child.stderr.once('end', () => errMeter.end());
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      observeLine('a service process (stdout)', line);
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(rec);
      if (rec.event === 'started') {
        resolve({
          child,
          address: rec.address as string,
          lines,
          stderr: () => err,
          exited,
          stop: (signal = 'SIGTERM') => {
            if (child.exitCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => reject(new Error(`service exited with ${code}: ${err}`)));
  });
}

/** Runs src/main.ts to completion (for startup failures); returns exit code and output. */
export function runService(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runScript('src/main.ts', args);
}

/** Runs one of our scripts (a path under the repository, e.g. src/cli/keys.ts) to completion; `stdin` is written to it, then closed. */
export function runScript(script: string, args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], { cwd: ROOT });
  child.stdin.end(stdin ?? '');
  let stdout = '';
  let stderr = '';
  const meters = { stdout: lineMeter('a service process (stdout)'), stderr: lineMeter('a service process (stderr)') };
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    meters.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    meters.stderr.write(d);
  });
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      meters.stdout.end();
      meters.stderr.end();
      resolve({ code, stdout, stderr });
    }),
  );
}
