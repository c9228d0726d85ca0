// The admin API's tokens: those inline in the config and those in admin.tokens_file (a list of
// {name, sha256}, YAML or JSON - the shape of a mounted Secret), read once at start.
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { readReferencedFile } from '../config/files.js';
import { describeSchemaError, resolveConfigPath, type LoadedConfig } from '../config/loader.js';
import { AdminTokenList, type AdminTokenConfig } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';

const validate = new Ajv({ allErrors: true, strict: true }).compile<AdminTokenConfig[]>(AdminTokenList);

export async function adminTokens(loaded: Pick<LoadedConfig, 'file' | 'dir' | 'config'>): Promise<readonly AdminTokenConfig[]> {
  const { tokens, tokens_file: file } = loaded.config.admin;
  if (file === undefined) return tokens;
  const keyPath = '/admin/tokens_file';
  const abs = resolveConfigPath(loaded, file);
  const text = (await readReferencedFile(loaded, keyPath, file, { maxBytes: 1024 * 1024 })).toString('utf8');
  let data: unknown;
  try {
    data = parse(text, { maxAliasCount: 100 }) ?? [];
  } catch {
    throw new ConfigError(loaded.file, [{ keyPath, problem: `${abs}: not valid YAML or JSON` }]);
  }
  if (!validate(data)) {
    throw new ConfigError(
      loaded.file,
      (validate.errors ?? []).map((e) => {
        const p = describeSchemaError(e);
        return { keyPath, problem: `${abs}: ${p.keyPath}: ${p.problem}` };
      }),
    );
  }
  return [...tokens, ...data];
}
