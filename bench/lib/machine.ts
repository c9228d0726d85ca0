// The machine and versions a result was measured on (printed into docs/performance.md).
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { tool } from './tools.js';
import { envoyBinary } from '../../test/helpers/envoy.js';
import { opaBinary } from '../../test/helpers/opa.js';

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
      ghz: version(() => tool('ghz'), ['--version'], /(\S+)/),
      vegeta: version(() => tool('vegeta'), ['-version'], /Version: (\S+)/),
    },
  };
}
