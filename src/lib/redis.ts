// One way to open Redis connections (shared state for revocation, API keys, rate limits).
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(':');
  return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
}

function options(cfg: RedisConfig, name: string): RedisOptions {
  const u = new URL(cfg.url);
  return {
    connectionName: `envoy-authz:${name}`,
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
export function connectRedis(cfg: RedisConfig, name: string, log: Logger): Redis {
  const o = options(cfg, name);
  const redis =
    cfg.mode === 'sentinel'
      ? new Redis({ ...o, sentinels: (cfg.nodes ?? []).map(splitHostPort), name: cfg.sentinel_name ?? 'mymaster' })
      : new Redis(cfg.url, o);
  return watch(redis, name, log);
}

/** The rate-limit store's connection: a Cluster client in cluster mode. */
export function connectRateLimitRedis(cfg: RedisConfig, log: Logger): Redis | Cluster {
  if (cfg.mode !== 'cluster') return connectRedis(cfg, 'ratelimit', log);
  const o = options(cfg, 'ratelimit');
  return watch(new Cluster((cfg.nodes ?? []).map(splitHostPort), {
      // ioredis auto-pipelining batches commands of different slots together, which a cluster refuses.
      redisOptions: { ...o, enableAutoPipelining: false },
      enableAutoPipelining: false,
      enableOfflineQueue: true,
    }), 'ratelimit', log);
}
