// All cores behind one port: with server.workers > 1 the process becomes a primary that forks
// that many workers (node:cluster). Each worker runs the whole service; the primary owns the
// listening socket and hands connections to the workers in turn. The primary serves nothing
// itself: it starts the workers, restarts one that dies after startup (with backoff), forwards
// SIGTERM/SIGINT and SIGHUP (reload) and exits when every worker has stopped.
import { parseHostPort, withPort } from '../lib/host-port.js';
import cluster, { type Worker } from 'node:cluster';
import type { LoadedConfig } from '../config/loader.js';
import type { Logger } from '../telemetry/logger.js';

export const WORKER_INDEX_ENV = 'ENVOY_AUTHZ_WORKER_INDEX';
/** Message a worker sends once it serves. */
export const READY_MESSAGE = 'envoy-authz:ready';

const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;

/** This process's worker index, or undefined when it is not a worker. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const i = Number(process.env[WORKER_INDEX_ENV]);
  return Number.isInteger(i) && i >= 0 ? i : undefined;
}

/**
 * The config a worker runs: the admin API on the configured port + its index (port 0 stays 0);
 * a decision-log file of its own, `<path>.worker-<index>` (workers rotating one file would
 * rename it under each other).
 */
export function workerConfig(loaded: LoadedConfig, index: number): LoadedConfig {
  if (index === 0) return loaded;
  let config = loaded.config;
  const admin = config.admin.address;
  const port = parseHostPort(admin)?.port ?? 0;
  if (port !== 0) config = { ...config, admin: { ...config.admin, address: withPort(admin, port + index) } };
  const dl = config.decision_logs;
  if (dl?.file) config = { ...config, decision_logs: { ...dl, file: { ...dl.file, path: `${dl.file.path}.worker-${index}` } } };
  return config === loaded.config ? loaded : { ...loaded, config };
}

/**
 * Runs the primary until every worker has stopped; resolves with the exit code. A worker that
 * exits before it serves is a startup failure: the others are stopped and its code returned.
 * Workers start with `execArgv` as their node options.
 */
export function runPrimary(count: number, log: Logger, execArgv: readonly string[] = process.execArgv): Promise<number> {
  cluster.setupPrimary({ execArgv: [...execArgv] });
  return new Promise((resolve) => {
    const workers = new Map<number, Worker>();
    const ready = new Set<number>();
    const backoff = new Map<number, number>();
    let stopping = false;
    let exitCode = 0;

    const fork = (index: number): void => {
      const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
      workers.set(index, w);
      w.on('message', (m: unknown) => {
        if (m !== READY_MESSAGE) return;
        ready.add(index);
        backoff.delete(index);
        if (ready.size === count) log.info({ event: 'workers_ready', workers: count }, 'all workers serving');
      });
      w.on('exit', (code, signal) => {
        workers.delete(index);
        const wasReady = ready.delete(index);
        if (stopping) {
          if (workers.size === 0) resolve(exitCode);
          return;
        }
        if (!wasReady) {
          // Failed to start: the same would happen again. Stop the rest and report it.
          log.error({ event: 'worker_start_failed', worker: index, code, signal }, 'worker failed to start; stopping');
          exitCode = code ?? 1;
          stop('SIGTERM');
          if (workers.size === 0) resolve(exitCode);
          return;
        }
        const delay = Math.min(RESTART_MAX_MS, (backoff.get(index) ?? RESTART_MIN_MS / 2) * 2);
        backoff.set(index, delay);
        log.error({ event: 'worker_exited', worker: index, code, signal, restart_in_ms: delay }, 'worker exited; restarting');
        setTimeout(() => {
          if (!stopping) fork(index);
        }, delay).unref();
      });
    };

    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'signal', signal, workers: workers.size }, 'stopping workers');
      for (const w of workers.values()) w.process.kill(signal);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Each worker reloads its config by itself (it watches the files too); SIGHUP reaches them all.
    process.on('SIGHUP', () => {
      if (stopping) return;
      log.info({ event: 'signal', signal: 'SIGHUP', workers: workers.size }, 'reloading workers');
      // Not to one still starting: it has no handler yet, and SIGHUP's default would end it. It reads the file anyway.
      for (const [i, w] of workers) if (ready.has(i)) w.process.kill('SIGHUP');
    });

    log.info({ event: 'primary', workers: count }, `starting ${count} workers`);
    for (let i = 0; i < count; i++) fork(i);
  });
}
