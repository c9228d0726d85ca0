// Loading done in a worker thread, its result handed back in parts. Parsing a large file (YAML
// rate-limit rules, a JSON key set) takes the event loop for hundreds of ms to seconds, and every
// call waits that long; in a worker it waits for nothing. Taking the result in one message would
// still cost the event loop its deserializing (50-100 ms for 10,000 rules), so the worker sends it
// in parts, each when the service thread asks, and the service thread asks for the next only
// after a turn of its event loop. A worker's heap is its own (capped by the caller): the
// parser's garbage never reaches the service's.
import { readFileSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, Worker, type ResourceLimits } from 'node:worker_threads';
import { ConfigError, errorMessage, type ConfigProblem } from './errors.js';
import type { Stop } from './stop.js';

/**
 * Files up to this size are read on the event loop: parsing them takes a few ms to a few tens of
 * ms (YAML about 2 s per MB), less than a worker takes to start and load its modules.
 */
export const IN_THREAD_MAX_BYTES = 32 * 1024;

/** What a worker posts: one part of its result, the end of it, or its failure (a ConfigError keeps its file and problems). */
type Message =
  | { readonly kind: 'part'; readonly value: unknown }
  | { readonly kind: 'done' }
  | { readonly kind: 'failed'; readonly message: string; readonly file?: string; readonly problems?: readonly ConfigProblem[] };

/** The URL of a sibling module of `from` (an import.meta.url), in the form this build runs: .ts from source, .js built. */
export function siblingModule(from: string, name: string): URL {
  return new URL(`./${name}${from.endsWith('.ts') ? '.ts' : '.js'}`, from);
}

/**
 * Worker side: posts `parts` one at a time, the first at once and each next one when asked; then
 * the end. A failure - of `produce` or while iterating - is posted instead.
 */
export function serveParts(produce: () => Promise<Iterable<unknown>>): void {
  yieldToServiceThread();
  const port = parentPort!;
  const fail = (err: unknown): void =>
    port.postMessage((err instanceof ConfigError ? { kind: 'failed', message: err.message, file: err.file, problems: err.problems } : { kind: 'failed', message: errorMessage(err) }) satisfies Message);
  produce().then((parts) => {
    const it = parts[Symbol.iterator]();
    const send = (): void => {
      try {
        const r = it.next();
        port.postMessage((r.done ? { kind: 'done' } : { kind: 'part', value: r.value }) satisfies Message);
      } catch (err) {
        fail(err);
      }
    };
    port.on('message', send);
    send();
  }, fail);
}

/** `items` in arrays of `size` (the last one shorter): the parts a worker serves. */
export function* batchesOf<T>(items: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Linux: this thread runs at the lowest priority (nice 19), so that where the service has one CPU
 * the kernel runs it in the service thread's idle time and preempts it as soon as a call comes
 * (at equal priority the service thread would wait in the run queue for the worker's slices).
 * setpriority() with a thread id sets that thread alone. Elsewhere, or if refused, nothing.
 */
function yieldToServiceThread(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
  } catch {
    // not Linux, or no /proc: the worker runs at the service's priority
  }
}

export interface PartsJob<T> {
  /** The worker module (siblingModule) and its workerData. */
  readonly module: URL;
  readonly data: unknown;
  /** The worker's old-generation cap (node's --max-old-space-size, when set, overrides it: nodejs/node#43991). */
  readonly heapMb: number;
  /** Takes one part (on the event loop: keep it short). */
  readonly take: (part: unknown) => void;
  /** The result, once every part is taken. */
  readonly done: () => T;
  /** The error for a worker that ran out of its heap. */
  readonly outOfMemory: () => Error;
  /** Stopping it ends the worker and rejects with the stop's reason (a closing service does not wait for a load). */
  readonly stop?: Pick<Stop, 'onAbort'>;
}

/** Service side: runs the worker, takes its parts one per turn of the event loop, and resolves with `done()`. */
export function loadInParts<T>(job: PartsJob<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    // About the service thread's stack (V8's default, ~1 MB), not a worker's 4 MB: input a worker could
    // read but this thread not take from it is refused in the worker (somewhat shallower than in-thread).
    const worker = moduleWorker(job.module, job.data, { maxOldGenerationSizeMb: job.heapMb, stackSizeMb: 1 });
    let outcome: { ok: true; value: T } | { ok: false; error: Error } | undefined;
    const end = (o: NonNullable<typeof outcome>): void => {
      outcome ??= o;
      void worker.terminate();
    };
    worker.on('message', (m: Message) => {
      if (outcome) return;
      try {
        if (m.kind === 'failed') return end({ ok: false, error: m.file !== undefined && m.problems ? new ConfigError(m.file, m.problems) : new Error(m.message) });
        if (m.kind === 'done') return end({ ok: true, value: job.done() });
        job.take(m.value);
      } catch (err) {
        return end({ ok: false, error: err instanceof Error ? err : new Error(errorMessage(err)) });
      }
      // The next part after a turn of the event loop: calls waiting meanwhile are answered first.
      setImmediate(() => worker.postMessage('next'));
    });
    // A part this thread cannot deserialize (nested deeper than its stack) would be dropped, and the load would wait forever.
    worker.once('messageerror', (err: Error) => end({ ok: false, error: new Error(`worker result could not be read: ${err.message}`) }));
    worker.once('error', (err: Error & { code?: string }) => end({ ok: false, error: err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? job.outOfMemory() : new Error(`worker failed: ${err.message}`) }));
    const unlink = job.stop?.onAbort((reason) => end({ ok: false, error: reason instanceof Error ? reason : new Error(errorMessage(reason)) }));
    worker.once('exit', () => {
      unlink?.();
      if (!outcome) reject(new Error('the worker stopped without a result'));
      else if (outcome.ok) resolve(outcome.value);
      else reject(outcome.error);
    });
  });
}

/**
 * Starts `module` in a worker thread with `workerData`. From TypeScript source (the tests,
 * `node --import tsx src/main.ts`) the worker registers tsx itself first: a worker does not take
 * its parent's --import hooks for its own entry module.
 */
export function moduleWorker(module: URL, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  // No node options of the service's (its --import/--require preloads, an APM agent, --input-type):
  // V8's flags are the process's anyway.
  if (!module.pathname.endsWith('.ts')) return new Worker(module, { workerData, resourceLimits, execArgv: [] });
  const boot = `import(${JSON.stringify(tsxEsmApi())}).then((m) => { (m.register ?? m.default.register)(); return import(${JSON.stringify(module.href)}); })`;
  return new Worker(boot, { eval: true, workerData, resourceLimits, execArgv: [] });
}

/** tsx's ESM register API (its exports map: the CommonJS build of it cannot load the ESM part from a worker). Development only. */
function tsxEsmApi(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(pkg, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  return pathToFileURL(join(dirname(pkg), exports['./esm/api']!.import.default)).href;
}
