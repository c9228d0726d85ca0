// The one place logging is configured. Redaction is set here once, for every logger in the process:
// credentials must never reach a log line, whoever writes it.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export const REDACTED = '[REDACTED]';

// Paths pino censors wherever these keys appear at the top level or one/two levels down
// (e.g. `headers.authorization`, `req.headers.cookie`).
const SENSITIVE_KEYS = [
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
];

function paths(): string[] {
  const out: string[] = [];
  for (const k of SENSITIVE_KEYS) {
    const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
    const dot = key.startsWith('[') ? '' : '.';
    out.push(key, `*${dot}${key}`, `*.*${dot}${key}`);
  }
  return out;
}

export const REDACT_PATHS: readonly string[] = Object.freeze(paths());

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'envoy-authz' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

export type { Logger };
