// Builds real OPA wasm bundles for tests with the pinned OPA CLI (make installs it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { opaBuildArgs } from '../../src/cli/eval/opa-build.js';
import { ROOT } from './service.js';

export function opaBinary(): string {
  const candidates = [process.env.OPA_BIN, join(ROOT, '.tools', 'bin', 'opa')].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'opa'))) return join(dir, 'opa');
  throw new Error('opa not found: run `make deps` (go install into .tools/bin)');
}

export interface BundleSpec {
  rego: string;
  data?: unknown;
  revision?: string;
  entrypoint?: string;
  /** More entrypoints (e.g. system/log/mask). */
  extraEntrypoints?: string[];
  /** More Rego files beside policy.rego, by file name (e.g. a system.log package). */
  files?: Record<string, string>;
  signingKey?: { file: string; alg: string };
}

/** Writes the sources to `dir/src-<name>` and builds `dir/<name>.tar.gz`; returns its path. */
export function buildBundle(dir: string, name: string, spec: BundleSpec): string {
  const src = join(dir, `src-${name}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'policy.rego'), spec.rego);
  for (const [name, text] of Object.entries(spec.files ?? {})) writeFileSync(join(src, name), text);
  if (spec.data !== undefined) writeFileSync(join(src, 'data.json'), JSON.stringify(spec.data));
  const out = join(dir, `${name}.tar.gz`);
  execFileSync(
    opaBinary(),
    [
      'build',
      '-b',
      '-t',
      'wasm',
      '-e',
      spec.entrypoint ?? 'envoy/authz/allow',
      ...(spec.extraEntrypoints ?? []).flatMap((e) => ['-e', e]),
      ...(spec.revision ? ['--revision', spec.revision] : []),
      ...(spec.signingKey ? ['--signing-key', spec.signingKey.file, '--signing-alg', spec.signingKey.alg] : []),
      '-o',
      out,
      src,
    ],
    { stdio: 'pipe' },
  );
  return out;
}

/** The repository's example policies (policies/), built the way `make policies` builds them (revision `repo`, with the mask entrypoint). */
export function buildRepoPolicies(out: string): string {
  execFileSync(opaBinary(), opaBuildArgs({ dir: join(ROOT, 'policies'), out, entrypoint: 'envoy/authz/allow' }, 'repo', ['system/log/mask']), { stdio: 'pipe' });
  return out;
}
