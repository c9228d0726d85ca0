// The grpc-go interop client (test/interop/grpcgo): built once per test file, run per scenario.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './service.js';

const run = promisify(execFile);

export interface InteropCall {
  rpc: 'check' | 'ratelimit' | 'health';
  /** the status code as the gRPC spec names it: OK, CANCELLED, DEADLINE_EXCEEDED, ... */
  code: string;
  message: string;
  elapsed_ms: number;
  compressed?: boolean;
  accept_encoding?: string[];
  check?: { status: number; allowed: boolean; http_status?: number; headers: Record<string, string> };
  ratelimit?: { overall: string; remaining: number[] };
  service?: string;
  health?: string;
}

export interface InteropReport {
  scenario: string;
  /** bin-metadata: the binary values sent, hex. */
  sent_bin?: string[];
  calls: InteropCall[];
}

/** `make grpc-interop` builds the program pinned into .tools/bin and exports GRPC_INTEROP_BIN; run
 *  on their own, tests build it into a temp dir (Go's build cache keeps that fast after the first time). */
export async function buildInterop(): Promise<{ bin: string; cleanup: () => void }> {
  const prebuilt = process.env.GRPC_INTEROP_BIN;
  if (prebuilt && existsSync(prebuilt)) return { bin: prebuilt, cleanup: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'envoy-authz-grpc-interop-'));
  const bin = join(dir, 'grpc-interop');
  await run('go', ['build', '-buildvcs=false', '-o', bin, '.'], { cwd: join(ROOT, 'test', 'interop', 'grpcgo'), timeout: 600_000 });
  return { bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs one scenario (asynchronously: an in-process service must keep answering meanwhile). */
export async function runInterop(bin: string, args: Record<string, string | number>): Promise<InteropReport> {
  const flags = Object.entries(args).map(([k, v]) => `-${k}=${v}`);
  const { stdout } = await run(bin, flags, { timeout: 20_000 });
  return JSON.parse(stdout) as InteropReport;
}
