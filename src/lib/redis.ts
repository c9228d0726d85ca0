// One way to open Redis connections (shared state for revocation, API keys, rate limits).
import { Redis } from 'ioredis';
import type { RedisConfig } from '../config/schema.js';

export function connectRedis(cfg: RedisConfig, name: string): Redis {
  return new Redis(cfg.url, {
    connectionName: `envoy-authz:${name}`,
    connectTimeout: cfg.connect_timeout_ms,
    commandTimeout: cfg.command_timeout_ms,
    // Fail fast instead of queueing requests behind a dead connection: callers fail closed.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
}
