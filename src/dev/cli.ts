// Developer commands for the local stack (`make token`, `make apikey`, `make admin-token`).
import { errorMessage } from '../lib/errors.js';
import { parseArgs } from 'node:util';
import { ensureDevIssuer, mintDevToken, parseTtl } from './issuer.js';
import { ensureDevAdminToken, ensureDevApiKey, ensureDevSigningKey } from './local-secrets.js';

const DEFAULT_DIR = '.dev/issuer';

const USAGE = `usage: node dist/src/dev/cli.js COMMAND [options]

  init          create every local secret that is missing (.dev/)
  token         print a token of the development issuer
                  --sub S        subject (default dev-user)
                  --roles a,b    roles claim (default buyer)
                  --scope "a b"  scope claim (default orders:read)
                  --aud A        audience (default demo-api)
                  --ttl T        lifetime: seconds, or 90s, 10m, 2h, 1d (default 1h)
  apikey        print the demo API key
  admin-token   print the local stack's admin API token

  --dir D       the dev issuer's directory (default ${DEFAULT_DIR})
  --dev-dir D   the local secrets' directory (default .dev)
  --help        this text

make token ROLES=auditor SUB=alice SCOPE="orders:read" TTL=10m passes the same options.
`;

const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string', default: DEFAULT_DIR },
      'dev-dir': { type: 'string', default: '.dev' },
      sub: { type: 'string' },
      aud: { type: 'string' },
      ttl: { type: 'string' },
      scope: { type: 'string' },
      roles: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  switch (command) {
    case 'init': {
      if (await ensureDevIssuer(values.dir)) process.stderr.write(`dev issuer key created in ${values.dir}\n`);
      await ensureDevApiKey(values['dev-dir']);
      await ensureDevSigningKey(values['dev-dir']);
      await ensureDevAdminToken(values['dev-dir']);
      return;
    }
    case 'apikey': {
      process.stdout.write(`${await ensureDevApiKey(values['dev-dir'])}\n`);
      return;
    }
    case 'admin-token': {
      process.stdout.write(`${await ensureDevAdminToken(values['dev-dir'])}\n`);
      return;
    }
    case 'token': {
      await ensureDevIssuer(values.dir);
      // Empty values (make token with ROLES unset passes --roles '') mean "the default".
      const given = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);
      const ttl = given(values.ttl);
      const roles = list(given(values.roles));
      const token = await mintDevToken(values.dir, {
        ...(given(values.sub) !== undefined ? { subject: given(values.sub)! } : {}),
        ...(given(values.aud) !== undefined ? { audience: given(values.aud)! } : {}),
        ...(ttl !== undefined ? { ttlSeconds: parseTtl(ttl) } : {}),
        ...(given(values.scope) !== undefined ? { scope: given(values.scope)! } : {}),
        ...(roles !== undefined ? { roles } : {}),
      });
      process.stdout.write(`${token}\n`);
      return;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

run(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${errorMessage(err)}\n`);
  process.exitCode = 1;
});
