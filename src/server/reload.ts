// Applying a changed config without a restart. On a change of the config file or of a file it
// refers to (fs.watch on their directories, debounced; a stat poll as fallback) and on SIGHUP: load
// and validate the whole file (the startup loader), build a new generation (the one composition
// root, sharing what did not change), swap it in at once, and close the old one once its calls
// have ended. Any error keeps the last good config: logged (file, key, problem), counted, shown in
// /readyz. Restart-only keys (config/restart.ts) are named and keep their running value.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { resolveConfigPath, semanticProblems, type LoadedConfig } from '../config/loader.js';
import { restartOnlyChanges, withRunningListeners } from '../config/restart.js';
import type { Config } from '../config/schema.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Components } from './components.js';
import type { Generation, Generations } from './generation.js';

export type ReloadTrigger = 'watch' | 'poll' | 'signal';

export interface ReloadProblem {
  readonly key_path: string;
  readonly problem: string;
}

export type ReloadResult =
  | { readonly ok: true; readonly generation: number; readonly restart_required: readonly string[] }
  | { readonly ok: false; readonly generation: number; readonly problems: readonly ReloadProblem[] };

/** The config part of /readyz. */
export interface ConfigStatus {
  readonly file: string;
  readonly generation: number;
  readonly loaded_at: string;
  readonly reloads: { readonly success: number; readonly failure: number };
  /** The last reload's problems while the last good config keeps serving (cleared by a success). */
  readonly last_error?: { readonly at: string; readonly file: string; readonly problems: readonly ReloadProblem[] };
  /** Changed keys the running process cannot apply (cleared when they match again). */
  readonly restart_required?: readonly string[];
}

export interface ReloaderDeps {
  /** The config file as given (undefined: the embedded defaults, nothing to watch). */
  readonly file: string | undefined;
  readonly load: () => Promise<LoadedConfig>;
  /** Builds a generation's components from a validated config (sharing unchanged components). */
  readonly build: (loaded: LoadedConfig) => Promise<Components>;
  readonly generation: (id: number, c: Components) => Generation;
  readonly gens: Generations;
  /** Called after each swap (logs what changed between the two generations). */
  readonly onSwap?: (prev: Components, next: Components) => void;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Bound of the problems kept and shown (a file with thousands of errors shows the first ones). */
const MAX_PROBLEMS = 20;

/** Files a config refers to that are read only when a generation is built: a change reloads. (Rate-limit files and the policy bundle have their own pollers; the revocation snapshot is ours; the listener's TLS files are restart-only.) */
export function referencedFiles(loaded: LoadedConfig): string[] {
  const c = loaded.config;
  const a = c.authentication;
  const paths = [
    ...a.jwt.issuers.flatMap((i) => [i.jwks?.file, i.secret_file]),
    a.introspection?.client_secret_file,
    a.api_keys?.file,
    a.api_keys?.hmac_secret_file,
    ...(c.token?.signing_keys.map((k) => k.file) ?? []),
    c.admin.tokens_file,
    c.policy?.verification?.key_file,
    c.policy?.proto_descriptor,
    // An OpenAPI document (files it $refs are read on the next reload, not watched).
    ...(c.openapi?.specs.map((s) => s.file) ?? []),
    c.decision_logs?.service?.token_file,
  ];
  return [...new Set(paths.filter((p): p is string => p !== undefined).map((p) => resolveConfigPath(loaded, p)))];
}

async function stampOf(files: readonly string[]): Promise<string> {
  const parts = await Promise.all(files.map((f) => stat(f).then((s) => `${s.mtimeMs}:${s.size}:${s.ino}`, () => 'missing')));
  return parts.join('|');
}

function problemsOf(err: unknown): { file: string | undefined; problems: ReloadProblem[] } {
  if (err instanceof ConfigError) return { file: err.file, problems: err.problems.slice(0, MAX_PROBLEMS).map((p) => ({ key_path: p.keyPath, problem: p.problem })) };
  return { file: undefined, problems: [{ key_path: '/', problem: errorMessage(err) }] };
}

export class ConfigReloader {
  private readonly running: Readonly<Config>;
  private watchers: FSWatcher[] = [];
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private files: string[] = [];
  private stamp = '';
  private tail: Promise<unknown> = Promise.resolve();
  private queued: Promise<ReloadResult> | undefined;
  private stopped = false;
  private warnedWatch = false;
  private loadedAt = Date.now();
  private lastError: ConfigStatus['last_error'];
  private restartRequired: readonly string[] = [];
  private readonly counts = { success: 0, failure: 0 };

  constructor(private readonly deps: ReloaderDeps) {
    this.running = deps.gens.current.c.loaded.config;
    deps.metrics.observeConfig(() => ({ generation: deps.gens.current.id, lastSuccessSeconds: Math.floor(this.loadedAt / 1000) }));
  }

  /** Watches the config file and the files it refers to (per the current generation's `reload` settings). */
  async start(): Promise<void> {
    await this.arm();
  }

  status(): ConfigStatus {
    return {
      file: this.deps.file ?? '<defaults>',
      generation: this.deps.gens.current.id,
      loaded_at: new Date(this.loadedAt).toISOString(),
      reloads: { ...this.counts },
      ...(this.lastError ? { last_error: this.lastError } : {}),
      ...(this.restartRequired.length > 0 ? { restart_required: this.restartRequired } : {}),
    };
  }

  /** Reloads now (SIGHUP, tests). Requests during a reload are coalesced into one more run after it. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    if (this.queued) return this.queued;
    const next = this.tail.then(() => {
      this.queued = undefined;
      return this.run(trigger);
    });
    this.queued = next;
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Stops watching and waits for a reload in progress (its generation is closed, not swapped in). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    await this.tail;
  }

  /** Watches the files of the current generation; `stamp`: theirs as read for it (absent: now). */
  private async arm(stamp?: string): Promise<void> {
    this.disarm();
    if (this.stopped || this.deps.file === undefined) return;
    const loaded = this.deps.gens.current.c.loaded;
    const settings = loaded.config.reload;
    this.files = [resolve(this.deps.file), ...referencedFiles(loaded)];
    this.stamp = stamp ?? (await stampOf(this.files));
    if (this.stopped) return;
    if (settings.watch) {
      // Directories, not files: an editor or a kubelet replaces a file by renaming another over it.
      for (const dir of new Set(this.files.map((f) => dirname(f)))) {
        const names = new Set(this.files.filter((f) => dirname(f) === dir).map((f) => basename(f)));
        try {
          const w = watch(dir, { persistent: false }, (_event, name) => {
            // Kubernetes swaps a ConfigMap or Secret through its `..data` link; other names are unrelated files.
            if (name === null || names.has(name) || name.startsWith('..')) this.schedule(settings.debounce_ms);
          });
          w.on('error', (err) => this.watchFailed(dir, err));
          this.watchers.push(w);
        } catch (err) {
          this.watchFailed(dir, err);
        }
      }
    }
    if (settings.poll_interval_ms > 0) {
      this.poller = setInterval(() => {
        if (this.debounce === undefined) void this.checkFiles('poll');
      }, settings.poll_interval_ms);
      this.poller.unref();
    }
  }

  private disarm(): void {
    for (const w of this.watchers.splice(0)) w.close();
    clearInterval(this.poller);
    this.poller = undefined;
    clearTimeout(this.debounce);
    this.debounce = undefined;
  }

  /** fs.watch is not available everywhere (some network and overlay file systems, inotify limits): the poll remains. */
  private watchFailed(dir: string, err: unknown): void {
    if (this.warnedWatch) return;
    this.warnedWatch = true;
    this.deps.log.warn({ event: 'config_watch_failed', dir, err: errorMessage(err) }, 'cannot watch the config directory; relying on reload.poll_interval_ms and SIGHUP');
  }

  private schedule(ms: number): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.checkFiles('watch');
    }, ms);
    this.debounce.unref();
  }

  /** Reloads when a watched file's size, mtime or inode changed (a watch event alone may be unrelated). */
  private async checkFiles(trigger: ReloadTrigger): Promise<void> {
    if (this.stopped) return;
    if ((await stampOf(this.files)) === this.stamp) return;
    await this.reload(trigger);
  }

  private async run(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { log, metrics, gens } = this.deps;
    const prev = gens.current;
    if (this.stopped) return { ok: false, generation: prev.id, problems: [{ key_path: '/', problem: 'shutting down' }] };
    // What this attempt reads, taken before reading: a failed attempt is not retried until a file
    // changes again, and a change made while it runs is seen afterwards.
    const configStamp = this.deps.file === undefined ? '' : await stampOf([resolve(this.deps.file)]);
    this.stamp = await stampOf(this.files);
    let built: Components | undefined;
    try {
      const loaded = await this.deps.load();
      const stamp = [configStamp, await stampOf(referencedFiles(loaded))].filter((p) => p !== '').join('|');
      const restart = restartOnlyChanges(this.running, loaded.config);
      const applied = withRunningListeners(this.running, loaded.config);
      // The running values of restart-only keys must hold with the new rest (e.g. workers > 1 with a memory store).
      const clashes = restart.length > 0 ? semanticProblems(applied) : [];
      if (clashes.length > 0) {
        throw new ConfigError(loaded.file, clashes.map((p) => ({ keyPath: p.keyPath, problem: `${p.problem} (with the running value of ${restart.join(', ')}, which needs a restart)` })));
      }
      const c = await this.deps.build({ ...loaded, config: applied });
      built = c;
      if (this.stopped) throw new Error('stopped');
      const next = this.deps.generation(prev.id + 1, c);
      gens.swap(next);
      built = undefined;
      this.loadedAt = Date.now();
      this.lastError = undefined;
      this.restartRequired = restart;
      this.counts.success += 1;
      metrics.configReload('success');
      log.info({ event: 'config_reloaded', trigger, file: loaded.file, generation: next.id }, 'configuration reloaded');
      if (restart.length > 0) {
        log.warn({ event: 'config_restart_required', file: loaded.file, keys: restart }, 'changed keys need a restart to apply; they keep their running values, the rest is applied');
      }
      this.deps.onSwap?.(prev.c, next.c);
      await this.arm(stamp);
      return { ok: true, generation: next.id, restart_required: restart };
    } catch (err) {
      await built?.close();
      // Shutting down meanwhile: not a config problem.
      if (this.stopped) return { ok: false, generation: prev.id, problems: [{ key_path: '/', problem: 'shutting down' }] };
      const { file, problems } = problemsOf(err);
      const shown = file ?? this.deps.file ?? '<defaults>';
      this.lastError = { at: new Date().toISOString(), file: shown, problems };
      this.counts.failure += 1;
      metrics.configReload('failure');
      log.error({ event: 'config_reload_failed', trigger, file: shown, problems, generation: prev.id }, 'configuration rejected; keeping the last good one');
      return { ok: false, generation: prev.id, problems };
    }
  }
}
