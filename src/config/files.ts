// Reading the files a config refers to (keys, JWKS, certificates), with errors that name the
// config file and the key that pointed at the file.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError } from '../lib/errors.js';
// Types only: the loader compiles the whole config schema when it loads (~0.5 s), which the
// workers that read key and rate-limit files (lib/module-worker.ts) need not pay.
import type { LoadedConfig } from './loader.js';

/** Resolves a path from the config against the config file's directory. */
export function resolveConfigPath(loaded: Pick<LoadedConfig, 'dir'>, path: string): string {
  return resolve(loaded.dir, path);
}

export interface ReadOptions {
  /** Refuse files readable by "other" (secrets and private keys). */
  secret?: boolean;
  maxBytes?: number;
}

export async function readReferencedFile(
  loaded: Pick<LoadedConfig, 'file' | 'dir'>,
  keyPath: string,
  path: string,
  opts: ReadOptions = {},
): Promise<Buffer> {
  const abs = resolveConfigPath(loaded, path);
  const fail = (problem: string): never => {
    throw new ConfigError(loaded.file, [{ keyPath, problem: `${abs}: ${problem}` }]);
  };
  const info = await stat(abs).catch((err: NodeJS.ErrnoException) => fail(`cannot read file (${err.code ?? 'error'})`));
  if (!info.isFile()) fail('not a regular file');
  if (opts.secret && (info.mode & 0o004) !== 0) fail('secret file must not be world-readable (chmod o-r)');
  const max = opts.maxBytes ?? 1024 * 1024;
  if (info.size > max) fail(`file is larger than ${max} bytes`);
  return readFile(abs).catch((err: NodeJS.ErrnoException) => fail(`cannot read file (${err.code ?? 'error'})`));
}

export async function readReferencedJson(
  loaded: Pick<LoadedConfig, 'file' | 'dir'>,
  keyPath: string,
  path: string,
  opts: ReadOptions = {},
): Promise<unknown> {
  const buf = await readReferencedFile(loaded, keyPath, path, opts);
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch {
    throw new ConfigError(loaded.file, [{ keyPath, problem: `${resolveConfigPath(loaded, path)}: not valid JSON` }]);
  }
}
