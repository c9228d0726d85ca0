// `make bench`: every scenario, for us and the peers, back to back on this machine; results as
// JSON in bench/results/, plots as SVG, and docs/performance.md regenerated from them.
//   --quick            short runs and small sizes (smoke test of the bench itself)
//   --only a,b         run only these scenarios (others keep their last results)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bench } from './lib/bench.js';
import { cpuTimes, machineInfo, stealPercent } from './lib/machine.js';
import { pin } from './lib/procs.js';
import { ROOT } from './lib/tools.js';
import { runCheck } from './scenarios/check.js';
import { runRateLimit } from './scenarios/ratelimit.js';
import { runEnvoy } from './scenarios/envoy.js';
import { runGrowth } from './scenarios/growth.js';
import { runWorkers } from './scenarios/workers.js';
import { runProfiles } from './scenarios/profiles.js';
import { runOpenApi } from './scenarios/openapi.js';
import { runReload } from './scenarios/reload.js';

const SCENARIOS = {
  check: (b: Bench) => runCheck(b),
  ratelimit: (b: Bench) => runRateLimit(b),
  envoy: (b: Bench) => runEnvoy(b),
  growth: (b: Bench) => runGrowth(b),
  workers: (b: Bench) => runWorkers(b),
  profiles: (b: Bench) => runProfiles(b),
  openapi: (b: Bench) => runOpenApi(b),
  reload: (b: Bench) => runReload(b),
} as const;
type Name = keyof typeof SCENARIOS;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
  const names = (values.only ? values.only.split(',') : Object.keys(SCENARIOS)) as Name[];
  for (const n of names) if (!(n in SCENARIOS)) throw new Error(`unknown scenario ${n}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), 'envoy-authz-bench-'));
  const b: Bench = {
    workDir,
    resultsDir,
    seconds: values.quick ? 2 : 5,
    warmupSeconds: values.quick ? 1 : 3,
    serverCpus: '0',
    loadCpus: '1',
    quick: values.quick,
    log: (m) => process.stdout.write(`${m}\n`),
  };
  // The bench itself (parsing results, reading pipes) stays off the server's core too.
  pin(process.pid, b.loadCpus);
  const started = Date.now();
  try {
    const machine = machineInfo();
    b.log(`machine: ${machine.cpu}, ${machine.cores} cores; node ${machine.versions.node}`);
    for (const n of names) {
      const t0 = Date.now();
      const cpu0 = cpuTimes();
      const result = await SCENARIOS[n](b);
      const steal = stealPercent(cpu0, cpuTimes());
      writeFileSync(join(resultsDir, `${n}.json`), `${JSON.stringify({ scenario: n, quick: b.quick, at: new Date().toISOString(), machine, ...(steal !== undefined ? { stealPercent: steal } : {}), result }, null, 2)}\n`);
      b.log(`${n}: done in ${Math.round((Date.now() - t0) / 1000)} s${steal !== undefined ? `, CPU steal ${steal}%` : ''}`);
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  b.log(`bench: ${Math.round((Date.now() - started) / 1000)} s`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
