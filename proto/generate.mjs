// Generates TypeScript types for the Envoy service protos into src/gen/ (git-ignored).
// Uses the same include roots and loader options as the runtime loader (proto/roots.json),
// so the types describe exactly the objects grpc-js hands to our handlers.
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const roots = JSON.parse(readFileSync(join(here, 'roots.json'), 'utf8'));
const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve(`${roots.package}/package.json`));
const outDir = join(root, 'src', 'gen');

const opts = roots.loaderOptions;
const args = [
  ...roots.files,
  ...(opts.keepCase ? ['--keepCase'] : []),
  `--longs=${opts.longs}`,
  `--enums=${opts.enums}`,
  ...(opts.oneofs ? ['--oneofs'] : []),
  '--grpcLib=@grpc/grpc-js',
  '--importFileExtension=.js',
  `--outDir=${outDir}`,
  ...roots.includeDirs.map((d) => `--includeDirs=${join(pkgDir, d)}`),
];
rmSync(outDir, { recursive: true, force: true });
execFileSync(join(root, 'node_modules', '.bin', 'proto-loader-gen-types'), args, { stdio: 'inherit' });
