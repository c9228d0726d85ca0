// The OpenTelemetry resource of this process, shared by traces and metrics: service.name
// (OTEL_SERVICE_NAME, default envoy-authz), service.version (package.json), service.instance.id
// (one per process: each worker is an instance), and whatever OTEL_RESOURCE_ATTRIBUTES adds,
// e.g. deployment.environment.name=prod (the OpenTelemetry specification's variable).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';

// The specification's limits are generous; ours keep a hostile value from growing every span.
const MAX_ATTRIBUTES = 32;
const MAX_VALUE_CHARS = 256;

/** OTEL_RESOURCE_ATTRIBUTES: `key=value` pairs joined by commas, values percent-encoded (W3C Baggage octets). */
export function parseResourceAttributes(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(',').slice(0, MAX_ATTRIBUTES)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    let value = pair.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      continue; // an invalid escape: the specification drops the pair
    }
    if (key !== '' && key.length <= MAX_VALUE_CHARS) out[key] = value.slice(0, MAX_VALUE_CHARS);
  }
  return out;
}

let version: string | undefined;

/** The version in package.json (read once; the process runs from src/ under tsx or dist/src/). */
export function serviceVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'envoy-authz' && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // not at this depth
    }
  }
  return version;
}

const INSTANCE_ID = randomUUID();

/** Read at startup only (the package.json read is synchronous, once per process). */
export function serviceResource(env: NodeJS.ProcessEnv = process.env): Resource {
  return resourceFromAttributes({
    'service.version': serviceVersion(),
    'service.instance.id': INSTANCE_ID,
    ...parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES, as the specification says.
    'service.name': env.OTEL_SERVICE_NAME ?? parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES)['service.name'] ?? 'envoy-authz',
  });
}
