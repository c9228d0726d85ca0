// Where the load tools and peers are: installed by `make bench-tools` into .tools/bin at
// pinned versions (see the Makefile), or found on PATH.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../test/helpers/service.js';

export function tool(name: string): string {
  const local = join(ROOT, '.tools', 'bin', name);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`${name} not found: run \`make bench\` (it installs the load tools and peers)`);
}

export { ROOT };
