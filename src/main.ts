#!/usr/bin/env node
// Process entry: settings, config, servers, signals. Startup errors are printed as one clear
// message (file, key path, problem) and exit non-zero, never as a stack trace.
import { createRequire } from 'node:module';
import type * as TlsModule from 'node:tls';
import { parseArgs } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import { loadConfigFile, parseConfig, type LoadedConfig } from './config/loader.js';
import { ConfigError, errorMessage } from './lib/errors.js';
import { checkConfig, startService, type RunningService } from './server/service.js';
import { createLogger } from './telemetry/logger.js';
import { setupTracing } from './telemetry/tracing.js';
import cluster from 'node:cluster';
import { READY_MESSAGE, runPrimary, workerConfig, workerIndex } from './server/workers.js';
import { serviceGcFlags, SINGLE_THREADED_GC } from './server/gc-threads.js';
import { cpuBudget, workerCount } from './lib/cpu-budget.js';

const USAGE = `usage: envoy-authz [--config FILE]

  --config FILE   YAML configuration (default: $AUTHZ_CONFIG, else embedded defaults)
  --check-config  validate the configuration and exit
  --help          this text
`;

const EXIT_CONFIG = 2;
const EXIT_STARTUP = 1;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string' },
      'check-config': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // TLS 1.2 is the floor for every listener, whatever runtime flags say.
  // (The CommonJS export is the writable one; an ESM namespace import is read-only.)
  const tls = createRequire(import.meta.url)('node:tls') as typeof TlsModule;
  if (tls.DEFAULT_MIN_VERSION !== 'TLSv1.3') tls.DEFAULT_MIN_VERSION = 'TLSv1.2';

  const file = values.config ?? process.env.AUTHZ_CONFIG;
  const loaded: LoadedConfig =
    file !== undefined && file !== '' ? await loadConfigFile(file) : { file: '<defaults>', dir: process.cwd(), config: parseConfig('<defaults>', '{}') };
  const log = createLogger(loaded.config.logging.level);
  // grpc-js writes its own diagnostics to stderr; send them through the one (redacting) logger.
  const grpcLog = log.child({ component: 'grpc' });
  setLogger({
    error: (...args: unknown[]) => grpcLog.error(args.map(String).join(' ')),
    info: (...args: unknown[]) => grpcLog.debug(args.map(String).join(' ')),
    debug: (...args: unknown[]) => grpcLog.debug(args.map(String).join(' ')),
  });
  if (values['check-config']) {
    // A dry run's warnings go to stderr: stdout says only whether the config is good.
    await checkConfig(loaded, createLogger('warn', process.stderr));
    process.stdout.write(`${loaded.file}: ok\n`);
    return 0;
  }
  const workers = workerCount(loaded.config.server.workers);
  // Workers sharing the CPUs start with the GC options for their share (server/gc-threads.ts).
  if (workers > 1 && cluster.isPrimary) return runPrimary(workers, log, [...process.execArgv, ...serviceGcFlags(process.execArgv, undefined, workers)]);
  // SIGTERM / SIGINT are ours from here, not only once serving: without a listener node dies at
  // once of the signal (no exit code), and a supervisor that sends it as soon as it reads the
  // `started` line - or during a long start - must get a clean shutdown. One that comes during the
  // start stops the service as soon as it is up.
  let onSignal: ((signal: NodeJS.Signals) => void) | undefined;
  let early: NodeJS.Signals | undefined;
  const signalled = (signal: NodeJS.Signals): void => {
    if (onSignal) onSignal(signal);
    else early ??= signal;
  };
  // `on`, not `once`: a worker may get the signal twice (from the terminal's process group and
  // from the primary), and a second one must not kill it mid-drain. Shutdown is idempotent.
  process.on('SIGTERM', signalled);
  process.on('SIGINT', signalled);
  // Node options are fixed at its start: what runs us (deploy/entrypoint.sh, `make run`) passes them.
  // Only the primary advises (its workers were started with the options: runPrimary).
  const gcAdvice = cluster.isPrimary ? serviceGcFlags(process.execArgv) : [];
  if (gcAdvice.includes(SINGLE_THREADED_GC)) {
    log.warn({ event: 'gc_threads', cpus: cpuBudget() }, `one CPU: V8's GC helper threads will preempt calls; start node with ${gcAdvice.join(' ')} (deploy/entrypoint.sh does)`);
  }
  const index = workerIndex();
  const tracing = await setupTracing(log);
  // A reload reads the same file again (and, in a worker, applies the same admin port offset).
  const ofWorker = (l: LoadedConfig): LoadedConfig => (index === undefined ? l : workerConfig(l, index));
  const reload = file !== undefined && file !== '' ? { file, load: async () => ofWorker(await loadConfigFile(file)) } : { file: undefined, load: () => Promise.resolve(loaded) };
  // SIGHUP: reload the config now (each worker gets it from the primary; the reloader logs the
  // outcome). During the start it is ignored, not fatal (its default): the start reads the file anyway.
  const started: { service?: RunningService } = {};
  process.on('SIGHUP', () => void started.service?.reload());
  const running = await startService(ofWorker(loaded), index === undefined ? log : log.child({ worker: index }), { reload });
  started.service = running;
  process.send?.(READY_MESSAGE);

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      log.info({ event: 'signal', signal }, 'received signal');
      running
        .shutdown()
        .then(() => tracing.shutdown())
        .then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ event: 'shutdown_failed', err: errorMessage(err) }, 'shutdown failed');
          resolve(EXIT_STARTUP);
        },
      );
    };
    onSignal = stop;
    if (early) stop(early);
  });
}

/** One line under 4 KiB (as every log line), even of 4-byte characters: a hostile path cannot flood the console. */
const MAX_LINE_CHARS = 1000;
function bounded(line: string): string {
  const flat = line.replace(/[\r\n]+/g, ' ');
  return flat.length <= MAX_LINE_CHARS ? flat : `${flat.slice(0, MAX_LINE_CHARS)}...[+${flat.length - MAX_LINE_CHARS} chars]`;
}

// A cluster worker's IPC channel would keep it alive after shutdown, and letting go of the channel
// makes Node exit with 0: a worker ends with an explicit exit so the primary sees its real code.
// (Log lines still waiting are written synchronously on exit: src/telemetry/line-destination.ts.)
const release = (): void => {
  if (cluster.isWorker) process.exit();
};

main().then(
  (code) => {
    process.exitCode = code;
    release();
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error:\n${err.problems.map((p) => bounded(`  ${err.file}: ${p.keyPath}: ${p.problem}`)).join('\n')}\n`);
      process.exitCode = EXIT_CONFIG;
      release();
      return;
    }
    const message = errorMessage(err);
    process.stderr.write(`${bounded(`envoy-authz: cannot start: ${message}`)}\n`);
    process.exitCode = EXIT_STARTUP;
    release();
  },
);
