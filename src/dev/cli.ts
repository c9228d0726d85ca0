// Developer commands for the local stack:
//   init-issuer [--dir D]                       create the dev issuer key pair if missing
//   token [--dir D] [--sub S] [--aud A] [--ttl SECONDS] [--scope "a b"]   print a dev token
import { parseArgs } from 'node:util';
import { ensureDevIssuer, mintDevToken } from './issuer.js';

const DEFAULT_DIR = '.dev/issuer';

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string', default: DEFAULT_DIR },
      sub: { type: 'string' },
      aud: { type: 'string' },
      ttl: { type: 'string' },
      scope: { type: 'string' },
    },
    strict: true,
  });
  switch (command) {
    case 'init-issuer': {
      const created = await ensureDevIssuer(values.dir);
      process.stderr.write(created ? `dev issuer key created in ${values.dir}\n` : '');
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
      throw new Error('usage: cli.js init-issuer|token [--dir D] [--sub S] [--aud A] [--ttl SECONDS] [--scope S]');
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
