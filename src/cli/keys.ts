// Key material commands (prints secrets to stdout once; never logs them):
//   apikey --owner NAME [--prefix eak] [--expires-in-days 90] [--scopes a,b] [--hosts h1,h2]
//          [--paths /a,/b] [--methods GET,POST] [--cidrs 10.0.0.0/8] [--hmac-secret-file F]
//       a new API key, and the digest entry to add to the key file (or to Redis)
//   signing-key --out FILE [--alg ES256|EdDSA]
//       a private JWK for the token server (mode 0600, kid = RFC 7638 thumbprint)
//   admin-token [--name NAME]
//       a random admin API token and the admin.tokens entry (name + sha256) to add
import { errorMessage } from '../lib/errors.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { stringify } from 'yaml';
import { digestApiKey, generateApiKey } from '../authn/apikey-format.js';
import { compileEntry } from '../authn/apikey-store.js';
import type { ApiKeyEntryConfig } from '../config/schema.js';

const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

async function apikey(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      owner: { type: 'string' },
      prefix: { type: 'string', default: 'eak' },
      'expires-in-days': { type: 'string', default: '90' },
      scopes: { type: 'string' },
      hosts: { type: 'string' },
      paths: { type: 'string' },
      methods: { type: 'string' },
      cidrs: { type: 'string' },
      'hmac-secret-file': { type: 'string' },
    },
    strict: true,
  });
  if (!values.owner) throw new Error('--owner is required');
  if (!/^[a-z][a-z0-9]{1,15}$/.test(values.prefix)) throw new Error('--prefix must match [a-z][a-z0-9]{1,15}');
  const days = Number(values['expires-in-days']);
  if (!Number.isInteger(days) || days <= 0 || days > 3650) throw new Error('--expires-in-days must be 1..3650');
  const secret = values['hmac-secret-file'] ? new Uint8Array(await readFile(values['hmac-secret-file'])) : undefined;
  const { key, id } = generateApiKey(values.prefix);
  const restrictions = {
    ...(list(values.hosts) ? { hosts: list(values.hosts) } : {}),
    ...(list(values.paths) ? { paths: list(values.paths) } : {}),
    ...(list(values.methods) ? { methods: list(values.methods)!.map((m) => m.toUpperCase()) } : {}),
    ...(list(values.cidrs) ? { source_cidrs: list(values.cidrs) } : {}),
  };
  const entry: ApiKeyEntryConfig = {
    id,
    digest: digestApiKey(key, secret),
    owner: values.owner,
    expires_at: new Date(Date.now() + days * 86400_000).toISOString(),
    ...(list(values.scopes) ? { scopes: list(values.scopes) } : {}),
    ...(Object.keys(restrictions).length > 0 ? { restrictions } : {}),
  };
  const problem = compileEntry(entry);
  if (typeof problem === 'string') throw new Error(problem);
  process.stdout.write(
    `# API key for ${values.owner} - shown once; give it to the caller through a secret store:\n${key}\n` +
      `# Add this entry under keys: in the api_keys file\n${stringify([entry])}` +
      `# or store it in Redis: HSET <key_prefix>apikeys ${id} '${JSON.stringify(entry)}'\n`,
  );
}

async function signingKey(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { out: { type: 'string' }, alg: { type: 'string', default: 'ES256' } }, strict: true });
  if (!values.out) throw new Error('--out is required');
  if (values.alg !== 'ES256' && values.alg !== 'EdDSA') throw new Error('--alg must be ES256 or EdDSA');
  const { privateKey, publicKey } = await generateKeyPair(values.alg, { extractable: true, ...(values.alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: values.alg, use: 'sig' };
  await writeFile(values.out, `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: 'wx' });
  process.stdout.write(`${values.out}: ${values.alg} signing key, kid ${kid}\n`);
}

function adminToken(args: string[]): void {
  const { values } = parseArgs({ args, options: { name: { type: 'string' } }, strict: true });
  if (!values.name) throw new Error('--name is required: who holds the token (it is shown in the audit log)');
  const token = randomBytes(32).toString('base64url');
  const entry = [{ name: values.name, sha256: createHash('sha256').update(token).digest('hex') }];
  process.stdout.write(`# admin token for ${values.name} - shown once:\n${token}\n# Add this entry under admin.tokens (or to the admin.tokens_file list)\n${stringify(entry)}`);
}

const USAGE = `usage: node dist/src/cli/keys.js COMMAND [options]

  apikey --owner NAME [--prefix eak] [--expires-in-days 90] [--scopes a,b] [--hosts h1,h2]
         [--paths /a,/b] [--methods GET,POST] [--cidrs 10.0.0.0/8] [--hmac-secret-file F]
      a new API key (printed once) and the digest entry for the key file or Redis
  signing-key --out FILE [--alg ES256|EdDSA]
      a private JWK for the token server (mode 0600, kid = RFC 7638 thumbprint)
  admin-token --name NAME
      a random admin API token (printed once) and its admin.tokens entry
  --help
      this text
`;

async function run([command, ...rest]: string[]): Promise<void> {
  if (command === undefined || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === 'apikey') return apikey(rest);
  if (command === 'signing-key') return signingKey(rest);
  if (command === 'admin-token') return adminToken(rest);
  throw new Error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exitCode = 1;
});
