// Holds the compiled rate-limit configuration and swaps in a new one when the files change; a
// config that does not load is logged and counted, and the old one keeps serving. Large files are
// read and compiled in a worker thread (load-off-thread.ts): calls go on being answered meanwhile.
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import { errorMessage } from '../lib/errors.js';
import { stat } from 'node:fs/promises';
import { Stop } from '../lib/stop.js';
import type { Logger } from '../telemetry/logger.js';
import type { CompileOptions, DomainConfig } from './config.js';
import { loadRateLimitRules } from './load-off-thread.js';

export class RateLimitConfigs {
  private current: ReadonlyMap<string, DomainConfig> = new Map();
  private stamp = '';
  private timer: NodeJS.Timeout | undefined;
  /** One load at a time: a change seen while one runs is loaded by the next check after it. */
  private loading = false;
  /** Stopped with the configuration: a load in its worker is ended, not waited for. */
  private readonly closing = new Stop();
  failures = 0;
  reloads = 0;

  constructor(
    private readonly files: readonly string[],
    private readonly opts: CompileOptions,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {}

  get domains(): ReadonlyMap<string, DomainConfig> {
    return this.current;
  }

  /** First load: errors propagate (a bad file at start is a startup error). */
  async start(intervalMs: number): Promise<void> {
    this.stamp = await this.stampOf();
    this.current = await loadRateLimitRules(this.files, this.opts, this.closing);
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.closing.abort(new Error('rate-limit configuration closed'));
  }

  private async stampOf(): Promise<string> {
    const parts = await Promise.all(this.files.map((f) => stat(f).then((s) => `${s.mtimeMs}:${s.size}`, () => 'missing')));
    return parts.join('|');
  }

  /** Reloads when any file changed. */
  async check(): Promise<void> {
    if (this.loading || this.closing.aborted) return;
    this.loading = true;
    try {
      await this.load();
    } finally {
      this.loading = false;
    }
  }

  private async load(): Promise<void> {
    const stamp = await this.stampOf();
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      const next = await loadRateLimitRules(this.files, this.opts, this.closing);
      if (this.closing.aborted) return;
      this.current = next;
      this.reloads += 1;
      this.metrics.event('ratelimit_config_reloaded');
      this.log.info({ event: 'ratelimit_config_reloaded', domains: [...this.current.keys()] }, 'rate-limit configuration reloaded');
    } catch (err) {
      if (this.closing.aborted) return; // closed while loading: nothing was rejected
      this.failures += 1;
      this.metrics.event('ratelimit_config_rejected');
      this.log.warn({ event: 'ratelimit_config_rejected', err: errorMessage(err) }, 'rate-limit configuration rejected; keeping the old one');
    }
  }
}
