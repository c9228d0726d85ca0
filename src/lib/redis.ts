// One way to open Redis connections (shared state for revocation, API keys, rate limits).
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';
import { parseHostPort, type HostPort } from './host-port.js';
import type { Logger } from '../telemetry/logger.js';

export interface ConnectOptions {
  /** Create the client without connecting (a dry run: nothing is sent until a command is). */
  readonly lazy?: boolean;
}

// The loader has checked every node's host:port.
const node = (hp: string): HostPort => parseHostPort(hp) ?? { host: hp, port: 6379 };

/** Where Redis is, for an operator's eyes: the URL without its credentials, or the node list. */
export function describeRedis(cfg: RedisConfig | undefined): string {
  if (!cfg) return '(no redis section)';
  if (cfg.mode !== 'standalone' && cfg.nodes) return `${cfg.mode} ${cfg.nodes.join(',')}`;
  try {
    const u = new URL(cfg.url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function options(cfg: RedisConfig, name: string, opts: ConnectOptions): RedisOptions {
  const u = new URL(cfg.url);
  return {
    connectionName: `envoy-authz:${name}`,
    lazyConnect: opts.lazy === true,
    connectTimeout: cfg.connect_timeout_ms,
    commandTimeout: cfg.command_timeout_ms,
    // Fail fast instead of queueing requests behind a dead connection: callers fail closed.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    retryStrategy: (times: number) => Math.min(times * 100, 2000),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

function watch<T extends Redis | Cluster>(redis: T, name: string, log: Logger): T {
  // Connection errors are expected while Redis is away; readiness shows it, the log says why.
  let last = '';
  redis.on('error', (err: Error) => {
    if (err.message !== last) log.warn({ event: 'redis_error', connection: name, err: err.message }, 'redis connection problem');
    last = err.message;
  });
  redis.on('ready', () => {
    if (last !== '') log.info({ event: 'redis_ready', connection: name }, 'redis connection restored');
    last = '';
  });
  return redis;
}

/** A standalone or sentinel connection (revocation, API keys, rate limits). */
export function connectRedis(cfg: RedisConfig, name: string, log: Logger, opts: ConnectOptions = {}): Redis {
  return connectTo(cfg, name, log, options(cfg, name, opts));
}

function connectTo(cfg: RedisConfig, name: string, log: Logger, o: RedisOptions): Redis {
  const redis =
    cfg.mode === 'sentinel'
      ? new Redis({ ...o, sentinels: (cfg.nodes ?? []).map(node), name: cfg.sentinel_name ?? 'mymaster' })
      : new Redis(cfg.url, o);
  return watch(redis, name, log);
}

/**
 * The rate-limit store's connection: a Cluster client in cluster mode. Its commands count (a
 * script run spends buckets, INCR counts a failure), so a command whose reply was lost with its
 * connection is not sent again: Redis may have run it, and a second run would count the same calls
 * twice. It fails instead (by `redis.command_timeout_ms` at the latest), and
 * `ratelimit.failure_mode` answers for it; ioredis would otherwise send it again on reconnect.
 */
export function connectRateLimitRedis(cfg: RedisConfig, log: Logger, opts: ConnectOptions = {}): Redis | Cluster {
  const o = { ...options(cfg, 'ratelimit', opts), autoResendUnfulfilledCommands: false };
  if (cfg.mode !== 'cluster') return connectTo(cfg, 'ratelimit', log, o);
  return watch(new Cluster((cfg.nodes ?? []).map(node), {
      // ioredis auto-pipelining batches commands of different slots together, which a cluster refuses.
      redisOptions: { ...o, enableAutoPipelining: false },
      enableAutoPipelining: false,
      enableOfflineQueue: true,
      // Not "Connection is closed, try again on the node after the failover": the command may have run.
      retryDelayOnFailover: 0,
      lazyConnect: opts.lazy === true,
    }), 'ratelimit', log);
}
