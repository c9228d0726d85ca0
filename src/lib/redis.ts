// One way to open Redis connections (shared state for revocation, API keys, rate limits).
import { Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';

export function connectRedis(cfg: RedisConfig, name: string, log: Logger): Redis {
  const redis = new Redis(cfg.url, {
    connectionName: `envoy-authz:${name}`,
    connectTimeout: cfg.connect_timeout_ms,
    commandTimeout: cfg.command_timeout_ms,
    // Fail fast instead of queueing requests behind a dead connection: callers fail closed.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
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
