// A worker thread running one of our modules. Built (dist/**/*.js), node runs the module as it is.
// From TypeScript source (the tests, `node --import tsx src/main.ts`) the worker must register tsx
// itself first: a worker does not take its parent's --import hooks for its own entry module.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** The URL of a sibling module of `from` (an import.meta.url), in the form this build runs: .ts from source, .js built. */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/** Starts `module` (from siblingModule) in a worker thread with `workerData`. */
export function moduleWorker(module: URL, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, { workerData, resourceLimits });
  const tsx = tsxEsmApi();
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { (m.register ?? m.default.register)(); return import(${JSON.stringify(module.href)}); })`;
  return new Worker(boot, { eval: true, workerData, resourceLimits, execArgv: [] });
}

/** tsx's ESM register API (its exports map: the CommonJS build of it cannot load the ESM part from a worker). Development only. */
function tsxEsmApi(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(pkg, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  return pathToFileURL(join(dirname(pkg), exports['./esm/api']!.import.default)).href;
}
