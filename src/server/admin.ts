// The admin HTTP listener (loopback by default). Open: /healthz, /readyz, /.well-known/jwks.json.
// Authenticated and audited (V-274643, V-274723): /v1/revocations - list, add, remove deny rules.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import type { Config } from '../config/schema.js';
import { DENY_KINDS, denyValueProblem, type DenyEntry, type DenyKind } from '../identity/revocation/entry.js';
import type { DenyList } from '../identity/revocation/deny-list.js';
import type { Logger } from '../telemetry/logger.js';

export interface Readiness {
  readonly ready: boolean;
  readonly components: Readonly<Record<string, string>>;
}

export interface AdminDeps {
  readonly cfg: Config['admin'];
  readonly log: Logger;
  readonly denyList: DenyList;
  readonly jwks?: () => { keys: JWK[] };
  readonly readiness: () => Readiness;
  /** Serves /metrics (Prometheus text). */
  readonly metrics?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Re-reads and activates the policy bundle now. */
  readonly reloadPolicy?: () => Promise<{ ok: true; revision: string; changed: boolean } | { ok: false; error: string }>;
}

export interface RunningAdmin {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024;

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

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'too_large', `body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'bad_request', 'body is not JSON');
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
  const problem = denyValueProblem(kind, b.value);
  if (problem) throw new HttpError(400, 'bad_request', problem);
  let expiresAt: number | undefined;
  if (b.expires_at !== undefined) {
    const t = typeof b.expires_at === 'string' ? Date.parse(b.expires_at) : NaN;
    if (Number.isNaN(t)) throw new HttpError(400, 'bad_request', 'expires_at must be an RFC 3339 time');
    expiresAt = Math.floor(t / 1000);
  } else if (b.ttl_s !== undefined) {
    if (typeof b.ttl_s !== 'number' || !Number.isInteger(b.ttl_s) || b.ttl_s <= 0) throw new HttpError(400, 'bad_request', 'ttl_s must be a positive integer');
    expiresAt = Math.floor(nowMs / 1000) + b.ttl_s;
  }
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > 512)) throw new HttpError(400, 'bad_request', 'reason must be a string up to 512 characters');
  return {
    kind,
    value: b.value,
    createdAt: Math.floor(nowMs / 1000),
    createdBy: actor,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(typeof b.reason === 'string' ? { reason: b.reason } : {}),
  };
}

export function startAdmin(deps: AdminDeps, now: () => number = Date.now): Promise<RunningAdmin> {
  const digests = deps.cfg.tokens.map((t) => ({ name: t.name, digest: Buffer.from(t.sha256, 'hex') }));

  /** The admin's name, or throws 401/403. Every configured digest is compared (constant time, no early exit). */
  const authenticate = (req: IncomingMessage): string => {
    if (digests.length === 0) throw new HttpError(403, 'forbidden', 'the admin API is closed: no admin tokens configured');
    const h = req.headers.authorization ?? '';
    const token = h.toLowerCase().startsWith('bearer ') ? h.slice(7).trim() : '';
    const presented = createHash('sha256').update(token).digest();
    let who: string | undefined;
    for (const d of digests) if (timingSafeEqual(presented, d.digest) && token !== '') who ??= d.name;
    if (!who) throw new HttpError(401, 'unauthenticated', 'admin token required');
    return who;
  };

  const audit = (req: IncomingMessage, fields: Record<string, unknown>): void => {
    deps.log.info({ event: 'admin', source: req.socket.remoteAddress, method: req.method, path: req.url?.split('?')[0], ...fields }, 'admin request');
  };

  /** Runs a state-changing endpoint for an authenticated admin; any failure is audited, then rethrown. */
  const authenticated = async <T>(req: IncomingMessage, action: string, fn: (actor: string) => Promise<T>): Promise<{ actor: string; result: T }> => {
    let actor: string | undefined;
    try {
      actor = authenticate(req);
      return { actor, result: await fn(actor) };
    } catch (err) {
      audit(req, { actor: actor ?? null, action, result: 'error', status: err instanceof HttpError ? err.status : 503 });
      throw err;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname;
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const r = deps.readiness();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (req.method === 'GET' && path === '/metrics' && deps.metrics) return deps.metrics(req, res);
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      if (!deps.jwks) throw new HttpError(404, 'not_found', 'no token signing keys configured');
      return send(res, 200, deps.jwks(), 'public, max-age=60');
    }
    if (path === '/v1/policy/reload') {
      return authenticated(req, 'policy_reload', async () => {
        if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST');
        if (!deps.reloadPolicy) throw new HttpError(404, 'not_found', 'no policy configured');
        return deps.reloadPolicy();
      }).then(({ actor, result: r }) => {
        audit(req, { actor, action: 'policy_reload', result: r.ok ? 'ok' : 'rejected', ...(r.ok ? { revision: r.revision } : { error: r.error }) });
        send(res, r.ok ? 200 : 422, r);
      });
    }
    if (path === '/v1/revocations' || path.startsWith('/v1/revocations/')) {
      await authenticated(req, req.method ?? 'unknown', async (actor) => {
        if (req.method === 'GET' && path === '/v1/revocations') {
          audit(req, { actor, action: 'list', result: 'ok' });
          return send(res, 200, { entries: deps.denyList.list() });
        }
        if (req.method === 'POST' && path === '/v1/revocations') {
          const entry = parseEntry(await readJson(req), actor, now());
          await deps.denyList.add(entry);
          audit(req, { actor, action: 'add', kind: entry.kind, value: entry.value, expires_at: entry.expiresAt, reason: entry.reason, result: 'ok' });
          return send(res, 201, entry);
        }
        const m = /^\/v1\/revocations\/([a-z_]+)\/(.+)$/.exec(path);
        if (req.method === 'DELETE' && m && (DENY_KINDS as readonly string[]).includes(m[1]!)) {
          const kind = m[1] as DenyKind;
          const value = decodeURIComponent(m[2]!);
          const removed = await deps.denyList.remove(kind, value);
          audit(req, { actor, action: 'remove', kind, value, result: removed ? 'ok' : 'not_found' });
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
      deps.log.warn({ event: 'admin_error', err: err instanceof Error ? err.message : String(err) }, 'admin request failed');
      send(res, 503, { error: 'unavailable' });
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  const [host, portText] = [deps.cfg.address.slice(0, deps.cfg.address.lastIndexOf(':')), deps.cfg.address.slice(deps.cfg.address.lastIndexOf(':') + 1)];
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host.replace(/^\[|\]$/g, ''), () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        address: `${host}:${port}`,
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
