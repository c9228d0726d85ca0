// The one place logging is configured. Redaction is set here once, for every logger in the process:
// credentials must never reach a log line, whoever writes it.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export const REDACTED = '[REDACTED]';

// Keys whose values are censored wherever they appear (any case, up to MAX_DEPTH levels down,
// e.g. `headers.authorization`, `req.headers.cookie`).
const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'token',
  'access_token',
  'id_token',
  'refresh_token',
  'jwt',
  'api_key',
  'apikey',
  'x-api-key',
  'password',
  'secret',
  'client_secret',
  'private_key',
]);
const MAX_DEPTH = 4;

const sensitive = (key: string): boolean => SENSITIVE_KEYS.has(key) || SENSITIVE_KEYS.has(key.toLowerCase());

/**
 * The value with every sensitive key censored; the same reference when there is nothing to
 * censor (the common case costs one set lookup per key and no copy). Callers' objects are never
 * modified. It replaces pino's path-based redaction, whose wildcard paths were the largest single
 * cost of a Check (docs/performance.md).
 */
export function redact(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const r = redact(v, depth + 1);
      if (r !== v) (out ??= value.slice())[i] = r;
    }
    return out ?? value;
  }
  // Errors, Maps, Buffers... are left to pino's serializers; only plain records are walked.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const rec = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const key in rec) {
    const v = rec[key];
    const r = sensitive(key) && v !== undefined ? REDACTED : redact(v, depth + 1);
    if (r !== v) (out ??= { ...rec })[key] = r;
  }
  return out ?? rec;
}

const redactRecord = (obj: Record<string, unknown>): Record<string, unknown> => redact(obj) as Record<string, unknown>;
// Child-logger bindings do not pass through formatters.log; pino applies serializers to them.
const censorTopLevel = Object.fromEntries([...SENSITIVE_KEYS].map((k) => [k, () => REDACTED]));

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'envoy-authz' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactRecord },
      serializers: censorTopLevel,
    },
    destination,
  );
}

export type { Logger };
