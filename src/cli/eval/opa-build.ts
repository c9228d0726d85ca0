// A policies folder -> a wasm bundle, the one way: `make policies` runs `policy.js build`, and
// `eval --policies` calls the same function, so the two cannot build differently.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import { parseBundle } from '../../policy/bundle.js';
import { PolicyEngine } from '../../policy/engine.js';
import { UsageError } from './usage-error.js';

/** Not policy sources: the build output, the policy tests, the folder's readme. */
const IGNORE = ['build', '*_test.rego', 'README.md'];
/** opa build compiles Rego to wasm in seconds; a hung build must not hang the CLI. */
const BUILD_TIMEOUT_MS = 180_000;

/** OPA: --opa, else $OPA_BIN (set by the Makefile), else `opa` on PATH, else the pinned .tools/bin/opa. */
export function findOpa(explicit?: string): string {
  if (explicit !== undefined) return explicit;
  const env = process.env.OPA_BIN;
  if (env && existsSync(env)) return env;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'opa'))) return join(dir, 'opa');
  const pinned = join(process.cwd(), '.tools', 'bin', 'opa');
  if (existsSync(pinned)) return pinned;
  throw new UsageError('opa not found: pass --opa PATH, put opa on PATH, or run `make deps`');
}

async function sources(dir: string, sub = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, sub), { withFileTypes: true })) {
    const rel = sub === '' ? e.name : `${sub}/${e.name}`;
    if (e.isDirectory()) {
      if (rel !== 'build') out.push(...(await sources(dir, rel)));
    } else if (e.name.endsWith('.rego') || e.name.endsWith('.json')) out.push(rel);
  }
  return out;
}

/** The bundle revision: the first 12 hex digits of SHA-256 over the sources (*.rego, *.json outside build/), in path order. */
export async function policyRevision(dir: string): Promise<string> {
  const files = (await sources(dir)).sort();
  const h = createHash('sha256');
  for (const f of files) h.update(await readFile(join(dir, f)));
  return h.digest('hex').slice(0, 12);
}

export interface BuildSpec {
  readonly opa: string;
  /** The policies folder. */
  readonly dir: string;
  /** The bundle.tar.gz to write. */
  readonly out: string;
  /** The decision rule, compiled as the wasm entrypoint (policy.decision_path). */
  readonly entrypoint: string;
}

/** Decision-log masking (OPA's system.log.mask) is a second wasm entrypoint when a policy declares `package system.log`. */
async function declaresMask(dir: string): Promise<boolean> {
  for (const f of await sources(dir)) {
    if (!f.endsWith('.rego') || f.endsWith('_test.rego')) continue;
    if (/^package\s+system\.log\s*$/m.test(await readFile(join(dir, f), 'utf8'))) return true;
  }
  return false;
}

/** Loads a bundle exactly as the service does: refuses, naming them, built-ins the service cannot provide, a missing entrypoint, an unreadable archive. */
export async function checkBundle(file: string, decisionPath: string): Promise<{ revision: string }> {
  const bundle = await parseBundle(await readFile(file));
  await new PolicyEngine({ decisionPath, initialPages: 16, maxPages: 1024 }).activate(bundle);
  return { revision: bundle.revision };
}

/** The opa arguments of that build (tests that build the repository's policies use them too). */
export function opaBuildArgs(spec: Omit<BuildSpec, 'opa'>, revision: string, extraEntrypoints: readonly string[] = []): string[] {
  return ['build', '-b', '-t', 'wasm', '-e', spec.entrypoint, ...extraEntrypoints.flatMap((e) => ['-e', e]), ...IGNORE.flatMap((i) => ['--ignore', i]), '--revision', revision, '-o', spec.out, spec.dir];
}

/** Runs `opa build -b -t wasm` on the folder (rejects with opa's own message when it fails), and
 *  keeps the bundle only if the service can load it (checkBundle). */
export async function buildPolicies(spec: BuildSpec): Promise<{ revision: string }> {
  if (!existsSync(spec.dir)) throw new UsageError(`policies folder ${spec.dir} does not exist`);
  const revision = await policyRevision(spec.dir);
  const tmp = `${spec.out}.tmp`;
  const args = opaBuildArgs({ ...spec, out: tmp }, revision, (await declaresMask(spec.dir)) ? ['system/log/mask'] : []);
  await new Promise<void>((resolve, reject) => {
    execFile(spec.opa, args, { timeout: BUILD_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const detail = String(stderr).trim() || err.message;
      reject(new UsageError(`opa build of ${relative(process.cwd(), spec.dir) || '.'} failed: ${detail}`));
    });
  });
  try {
    await checkBundle(tmp, spec.entrypoint);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new UsageError(`${relative(process.cwd(), spec.dir) || '.'} builds, but the service cannot load it: ${errorMessage(err)}`);
  }
  await rename(tmp, spec.out);
  return { revision };
}
