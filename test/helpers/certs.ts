import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './service.js';

export interface DevCerts {
  dir: string;
  read(name: 'ca.crt' | 'server.crt' | 'server.key' | 'client.crt' | 'client.key'): Buffer;
}

/** Development certificates made by the same script `make certs` runs. */
export function devCerts(dir: string): DevCerts {
  execFileSync(join(ROOT, 'envoy', 'dev-certs.sh'), [dir], { stdio: 'ignore' });
  return { dir, read: (name) => readFileSync(join(dir, name)) };
}
