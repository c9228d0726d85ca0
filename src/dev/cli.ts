// Developer commands for the local stack:
//   init [--dev-dir .dev]                       create every local secret that is missing
//   token [--dir D] [--sub S] [--aud A] [--ttl SECONDS] [--scope "a b"]   print a dev token
//   apikey [--dev-dir .dev]                     print the demo API key
import { parseArgs } from 'node:util';
import { ensureDevIssuer, mintDevToken } from './issuer.js';
import { ensureDevApiKey, ensureDevSigningKey } from './local-secrets.js';

const DEFAULT_DIR = '.dev/issuer';

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string', default: DEFAULT_DIR },
      'dev-dir': { type: 'string', default: '.dev' },
      sub: { type: 'string' },
      aud: { type: 'string' },
      ttl: { type: 'string' },
      scope: { type: 'string' },
    },
    strict: true,
  });
  switch (command) {
    case 'init': {
      if (await ensureDevIssuer(values.dir)) process.stderr.write(`dev issuer key created in ${values.dir}\n`);
      await ensureDevApiKey(values['dev-dir']);
      await ensureDevSigningKey(values['dev-dir']);
      return;
    }
    case 'apikey': {
      process.stdout.write(`${await ensureDevApiKey(values['dev-dir'])}\n`);
      return;
    }
    case 'token': {
      await ensureDevIssuer(values.dir);
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && !(Number.isInteger(ttl) && ttl > 0)) throw new Error('--ttl must be a positive integer');
      const token = await mintDevToken(values.dir, {
        ...(values.sub !== undefined ? { subject: values.sub } : {}),
        ...(values.aud !== undefined ? { audience: values.aud } : {}),
        ...(ttl !== undefined ? { ttlSeconds: ttl } : {}),
        ...(values.scope !== undefined ? { scope: values.scope } : {}),
      });
      process.stdout.write(`${token}\n`);
      return;
    }
    default:
      throw new Error('usage: cli.js init|token|apikey [--dir D] [--dev-dir D] [--sub S] [--aud A] [--ttl SECONDS] [--scope S]');
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
