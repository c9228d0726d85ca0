// The admin HTTP listener (loopback by default). Open: /healthz, /readyz, /.well-known/jwks.json.
// Authenticated and audited (V-274643, V-274723): /v1/revocations - list, add, remove deny rules;
// /v1/policy/reload; /v1/openapi/operations - the endpoint inventory (REC-API-4).
import { errorMessage } from '../lib/errors.js';
import { parseHostPort, withPort } from '../lib/host-port.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import type { AdminTokenConfig } from '../config/schema.js';
import { DENY_KINDS, denyValueProblem, normalizeDenyValue, type DenyEntry, type DenyKind } from '../identity/revocation/entry.js';
import type { DenyList } from '../identity/revocation/deny-list.js';
import { parseRfc3339 } from '../lib/rfc3339.js';
import type { Logger } from '../telemetry/logger.js';
import { maskShapes } from '../telemetry/redact.js';

export interface Readiness {
  readonly ready: boolean;
  readonly components: Readonly<Record<string, string>>;
  /** The config generation serving and the last reload's outcome (server/reload.ts ConfigStatus). */
  readonly config?: object;
}

/** What the admin API serves from the current config generation (a reload replaces it). */
export interface AdminView {
  /** admin.tokens and those of admin.tokens_file. */
  readonly tokens: readonly AdminTokenConfig[];
  readonly denyList: DenyList;
  readonly jwks?: () => { keys: JWK[] };
  /** Re-reads and activates the policy bundle now. */
  readonly reloadPolicy?: () => Promise<{ ok: true; revision: string; changed: boolean } | { ok: false; error: string }>;
  /** The OpenAPI endpoint inventory: loaded operations and their calls since start. */
  readonly openapiOperations?: () => unknown;
}

export interface AdminDeps {
  /** admin.address (restart-only: the listener is bound once). */
  readonly address: string;
  readonly log: Logger;
  readonly view: () => AdminView;
  readonly readiness: () => Readiness;
  /** Serves /metrics (Prometheus text). */
  readonly metrics?: (req: IncomingMessage, res: ServerResponse) => void;
}

interface Digest {
  readonly name: string;
  readonly digest: Buffer;
}
/** Token digests decoded once per token list (one list per config generation). */
const digestCache = new WeakMap<readonly AdminTokenConfig[], readonly Digest[]>();
function digestsOf(tokens: readonly AdminTokenConfig[]): readonly Digest[] {
  let d = digestCache.get(tokens);
  if (!d) {
    d = tokens.map((t) => ({ name: t.name, digest: Buffer.from(t.sha256, 'hex') }));
    digestCache.set(tokens, d);
  }
  return d;
}

export interface RunningAdmin {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024;
/** The longest a deny entry may last when it has an end (ttl_s or expires_at); none: until removed. */
export const MAX_TTL_S = 366 * 24 * 3600;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, cache = 'no-store'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': cache });
  res.end(text);
}

const tooLarge = (): HttpError => new HttpError(413, 'too_large', `body over ${MAX_BODY} bytes`);

/**
 * The JSON body, read up to MAX_BODY bytes (checked as bytes arrive). Past the cap the rest is
 * drained, not read, so the 413 reaches a client that is still sending (the connection then
 * closes; requestTimeout bounds the drain).
 */
function readJson(req: IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) {
    req.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY) return void chunks.push(chunk);
      req.off('data', onData).off('end', onEnd);
      chunks.length = 0;
      req.resume();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch {
        reject(new HttpError(400, 'bad_request', 'body is not JSON'));
      }
    };
    req.on('data', onData).once('end', onEnd).once('error', reject);
  });
}

function expiryOf(b: Record<string, unknown>, nowMs: number): number | undefined {
  const nowS = Math.floor(nowMs / 1000);
  if (b.expires_at !== undefined) {
    const t = typeof b.expires_at === 'string' ? parseRfc3339(b.expires_at) : undefined;
    if (t === undefined) throw new HttpError(400, 'bad_request', 'expires_at must be an RFC 3339 date-time with a time zone, e.g. 2026-12-31T23:59:59Z');
    const at = Math.floor(t / 1000);
    if (at <= nowS) throw new HttpError(400, 'bad_request', 'expires_at is in the past');
    if (at - nowS > MAX_TTL_S) throw new HttpError(400, 'bad_request', `expires_at is more than ${MAX_TTL_S} s ahead; omit it for an entry that lasts until removed`);
    return at;
  }
  if (b.ttl_s !== undefined) {
    if (typeof b.ttl_s !== 'number' || !Number.isInteger(b.ttl_s) || b.ttl_s <= 0 || b.ttl_s > MAX_TTL_S) {
      throw new HttpError(400, 'bad_request', `ttl_s must be an integer from 1 to ${MAX_TTL_S}; omit it for an entry that lasts until removed`);
    }
    return nowS + b.ttl_s;
  }
  return undefined;
}

function decodeValue(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'bad_request', 'the value in the path is not valid percent-encoding');
  }
}

function parseEntry(body: unknown, actor: string, nowMs: number): DenyEntry {
  if (body === null || typeof body !== 'object') throw new HttpError(400, 'bad_request', 'expected a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.kind !== 'string' || !(DENY_KINDS as readonly string[]).includes(b.kind)) {
    throw new HttpError(400, 'bad_request', `kind must be one of ${DENY_KINDS.join(', ')}`);
  }
  const kind = b.kind as DenyKind;
  if (typeof b.value !== 'string') throw new HttpError(400, 'bad_request', 'value must be a string');
  const value = normalizeDenyValue(kind, b.value);
  const problem = denyValueProblem(kind, value);
  if (problem) throw new HttpError(400, 'bad_request', problem);
  const expiresAt = expiryOf(b, nowMs);
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > 512)) throw new HttpError(400, 'bad_request', 'reason must be a string up to 512 characters');
  return {
    kind,
    value,
    createdAt: Math.floor(nowMs / 1000),
    createdBy: actor,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    // Free text is stored and shown: a credential pasted into it is masked first.
    ...(typeof b.reason === 'string' ? { reason: maskShapes(b.reason, false) } : {}),
  };
}

export function startAdmin(deps: AdminDeps, now: () => number = Date.now): Promise<RunningAdmin> {
  /** The admin's name, or throws 401/403. Every configured digest is compared (constant time, no early exit). */
  const authenticate = (req: IncomingMessage, view: AdminView): string => {
    const digests = digestsOf(view.tokens);
    if (digests.length === 0) throw new HttpError(403, 'forbidden', 'the admin API is closed: no admin tokens configured');
    const h = req.headers.authorization ?? '';
    const token = h.toLowerCase().startsWith('bearer ') ? h.slice(7).trim() : '';
    const presented = createHash('sha256').update(token).digest();
    let who: string | undefined;
    for (const d of digests) if (timingSafeEqual(presented, d.digest) && token !== '') who ??= d.name;
    if (!who) throw new HttpError(401, 'unauthenticated', 'admin token required');
    return who;
  };

  /** Who asked what, taken when the request arrives: the socket may be gone by the time the record is written. */
  interface Origin {
    readonly source: string | undefined;
    readonly method: string | undefined;
    readonly path: string | undefined;
  }
  // The logger cuts and masks the path (a key or token in it is never written whole).
  const audit = (o: Origin, fields: Record<string, unknown>): void => {
    deps.log.info({ event: 'admin', source: o.source, method: o.method, path: o.path, ...fields }, 'admin request');
  };

  /**
   * Runs a state-changing endpoint for an authenticated admin; any failure is audited with the
   * fields the endpoint had learnt by then (`fields`: action, kind, value - the same fields and
   * the same masking as its success record) and the reason, then rethrown.
   */
  const authenticated = async <T>(
    req: IncomingMessage,
    view: AdminView,
    o: Origin,
    action: string,
    fn: (actor: string, fields: Record<string, unknown>) => Promise<T>,
  ): Promise<{ actor: string; result: T }> => {
    let actor: string | undefined;
    const fields: Record<string, unknown> = { action };
    try {
      actor = authenticate(req, view);
      return { actor, result: await fn(actor, fields) };
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 503;
      audit(o, { actor: actor ?? null, ...fields, result: 'error', status, error: errorMessage(err) });
      throw err;
    }
  };

  /** The revocation API's action for a request (a failed request is audited under it too). */
  const revocationAction = (method: string | undefined, path: string): string => {
    if (path === '/v1/revocations' && method === 'GET') return 'list';
    if (path === '/v1/revocations' && method === 'POST') return 'add';
    if (path.startsWith('/v1/revocations/') && method === 'DELETE') return 'remove';
    return method ?? 'unknown';
  };

  /** kind and value of a POST body as far as they can be read, normalized as a stored entry would be (an API key becomes its id). */
  const requestedEntry = (body: unknown): Record<string, unknown> => {
    if (body === null || typeof body !== 'object') return {};
    const b = body as Record<string, unknown>;
    const kind = typeof b.kind === 'string' ? b.kind : undefined;
    const known = kind !== undefined && (DENY_KINDS as readonly string[]).includes(kind);
    const value = typeof b.value === 'string' ? (known ? normalizeDenyValue(kind as DenyKind, b.value) : b.value) : undefined;
    return { ...(kind !== undefined ? { kind } : {}), ...(value !== undefined ? { value } : {}) };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin: Origin = { source: req.socket.remoteAddress, method: req.method, path: req.url?.split('?')[0] };
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname;
    // One generation for the whole request, even if a reload swaps it meanwhile.
    const view = deps.view();
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const r = deps.readiness();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (req.method === 'GET' && path === '/metrics' && deps.metrics) return deps.metrics(req, res);
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      if (!view.jwks) throw new HttpError(404, 'not_found', 'no token signing keys configured');
      return send(res, 200, view.jwks(), 'public, max-age=60');
    }
    if (path === '/v1/policy/reload') {
      return authenticated(req, view, origin, 'policy_reload', async () => {
        if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST');
        if (!view.reloadPolicy) throw new HttpError(404, 'not_found', 'no policy configured');
        return view.reloadPolicy();
      }).then(({ actor, result: r }) => {
        audit(origin, { actor, action: 'policy_reload', result: r.ok ? 'ok' : 'rejected', ...(r.ok ? { revision: r.revision } : { error: r.error }) });
        send(res, r.ok ? 200 : 422, r);
      });
    }
    if (path === '/v1/openapi/operations') {
      return authenticated(req, view, origin, 'openapi_operations', () => {
        if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET');
        const inventory = view.openapiOperations;
        if (!inventory) throw new HttpError(404, 'not_found', 'no openapi specs configured');
        return Promise.resolve(inventory());
      }).then(({ actor, result }) => {
        audit(origin, { actor, action: 'openapi_operations', result: 'ok' });
        send(res, 200, result);
      });
    }
    if (path === '/v1/revocations' || path.startsWith('/v1/revocations/')) {
      await authenticated(req, view, origin, revocationAction(req.method, path), async (actor, fields) => {
        if (req.method === 'GET' && path === '/v1/revocations') {
          audit(origin, { actor, action: 'list', result: 'ok' });
          return send(res, 200, { entries: view.denyList.list() });
        }
        if (req.method === 'POST' && path === '/v1/revocations') {
          const body = await readJson(req);
          Object.assign(fields, requestedEntry(body));
          const entry = parseEntry(body, actor, now());
          Object.assign(fields, { expires_at: entry.expiresAt, reason: entry.reason });
          await view.denyList.add(entry);
          audit(origin, { actor, action: 'add', kind: entry.kind, value: entry.value, expires_at: entry.expiresAt, reason: entry.reason, result: 'ok' });
          return send(res, 201, entry);
        }
        const m = /^\/v1\/revocations\/([a-z_]+)\/(.+)$/.exec(path);
        if (req.method === 'DELETE' && m && (DENY_KINDS as readonly string[]).includes(m[1]!)) {
          const kind = m[1] as DenyKind;
          fields.kind = kind;
          const value = normalizeDenyValue(kind, decodeValue(m[2]!));
          fields.value = value;
          const removed = await view.denyList.remove(kind, value);
          audit(origin, { actor, action: 'remove', kind, value, result: removed ? 'ok' : 'not_found' });
          return removed ? send(res, 204, {}) : send(res, 404, { error: 'not_found' });
        }
        throw new HttpError(404, 'not_found', 'no such admin endpoint');
      });
      return;
    }
    throw new HttpError(404, 'not_found', 'no such endpoint');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        if (err.status === 401) res.setHeader('www-authenticate', 'Bearer');
        send(res, err.status, { error: err.error, message: err.message });
        return;
      }
      deps.log.warn({ event: 'admin_error', err: errorMessage(err) }, 'admin request failed');
      send(res, 503, { error: 'unavailable' });
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  const listen = parseHostPort(deps.address);
  if (!listen) throw new Error(`admin.address ${deps.address} is not host:port`);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        address: withPort(deps.address, port),
        port,
        close: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
