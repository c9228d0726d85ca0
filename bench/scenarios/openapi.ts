// Check with OpenAPI validation on vs off: the same ES256 JWT (token cache on, as shipped), the
// same RBAC Rego policy and the same request - POST /orders/{orderId}/lines?dry_run=false with a
// typical JSON body (10 top-level fields, about 1 KB) sent in the Check as with_request_body
// sends it - against envoy-authz without an `openapi` section and with one spec in enforce mode
// that describes the operation (path and query parameters, a header, the body with formats,
// patterns, bounds, enums, a nested object and an array). Every request is valid, so both answer
// OK and the difference is the cost of matching and validating. Target: <= 15% more CPU per call.
// Runs alternate between the two servers; each figure is the median of seven runs by CPU per call.
// The stage's own cost is also measured in process, where the machine's other load disturbs it least.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { measure, ratio, warmUp, type Bench } from '../lib/bench.js';
import { checkFixtures, checkRequest, ISSUER, AUDIENCE } from '../lib/fixtures.js';
import { CHECK } from '../lib/ghz.js';
import { startOurs, type Server } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { opaBinary } from '../../test/helpers/opa.js';
import { execFileSync } from 'node:child_process';
import { ROOT } from '../lib/tools.js';
import { parseConfig } from '../../src/config/loader.js';
import { parseBody } from '../../src/envoy/body.js';
import { parseQuery } from '../../src/envoy/go-url.js';
import { toRequestView } from '../../src/envoy/request.js';
import type { CheckRequest__Output } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { buildOpenApi } from '../../src/openapi/stage.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { childSpan } from '../../src/telemetry/tracing.js';

export interface OpenApiResults {
  bodyBytes: number;
  fields: number;
  off: LoadResult;
  /** A second server with the `off` config: the difference between two identical servers (the noise of this machine). */
  offAgain: LoadResult;
  on: LoadResult;
  /** (CPU per call on - off) / off, in percent. */
  cpuAddedPercent: number;
  /** (CPU per call offAgain - off) / off, in percent: what no change at all measures here. */
  noisePercent: number;
  /** CPU microseconds of the stage alone per call (match, validate in its span, inventory and metrics; in process; query and body parsed once for the policy as in a Check). */
  stageUs: number;
}

const ORDER = '6f1c2b9e-4d7a-4c1e-9b2a-0e5d8f3a7c21';

/** The typical body: 10 fields, strings, numbers, a boolean, an enum, formats, a nested object and an array. */
export function orderBody(i: number): string {
  return JSON.stringify({
    customer_id: '0b7e3c52-9a1d-4f6e-8c2b-5d4a3f1e9b70',
    email: `buyer-${i % 1000}@example.test`,
    placed_at: '2026-11-30T10:15:00Z',
    currency: 'EUR',
    total_cents: 12345 + (i % 100),
    priority: 'normal',
    gift: false,
    note: 'Please leave the parcel with the neighbour at number 12 if nobody answers the door; ring twice.',
    shipping: { name: 'Alex Example', street: 'Hauptstrasse 1', city: 'Berlin', postcode: '10115', country: 'DE' },
    lines: [1, 2, 3, 4, 5].map((n) => ({ sku: `ABC-${100 + n}`, quantity: n, unit_cents: 999 + n })),
  });
}

export const SPEC = {
  openapi: '3.1.0',
  info: { title: 'bench orders', version: '1' },
  paths: {
    '/orders/{orderId}/lines': {
      post: {
        operationId: 'addLines',
        parameters: [
          { name: 'orderId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
          { name: 'dry_run', in: 'query', schema: { type: 'boolean' } },
          { name: 'x-request-id', in: 'header', schema: { type: 'string', maxLength: 64 } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Order' } } } },
        responses: { '201': { description: 'created' } },
      },
    },
  },
  components: {
    schemas: {
      Order: {
        type: 'object',
        additionalProperties: false,
        required: ['customer_id', 'email', 'placed_at', 'currency', 'total_cents', 'lines'],
        properties: {
          customer_id: { type: 'string', format: 'uuid' },
          email: { type: 'string', format: 'email', maxLength: 254 },
          placed_at: { type: 'string', format: 'date-time' },
          currency: { type: 'string', pattern: '^[A-Z]{3}$' },
          total_cents: { type: 'integer', minimum: 0, maximum: 100000000 },
          priority: { type: 'string', enum: ['low', 'normal', 'high'] },
          gift: { type: 'boolean' },
          note: { type: ['string', 'null'], maxLength: 500 },
          shipping: { $ref: '#/components/schemas/Address' },
          lines: { type: 'array', minItems: 1, maxItems: 50, items: { $ref: '#/components/schemas/Line' } },
        },
      },
      Address: {
        type: 'object',
        required: ['name', 'street', 'city', 'postcode', 'country'],
        properties: {
          name: { type: 'string', maxLength: 100 },
          street: { type: 'string', maxLength: 100 },
          city: { type: 'string', maxLength: 60 },
          postcode: { type: 'string', pattern: '^[0-9A-Z -]{3,10}$' },
          country: { type: 'string', pattern: '^[A-Z]{2}$' },
        },
      },
      Line: {
        type: 'object',
        additionalProperties: false,
        required: ['sku', 'quantity', 'unit_cents'],
        properties: {
          sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{3}$' },
          quantity: { type: 'integer', minimum: 1, maximum: 99 },
          unit_cents: { type: 'integer', minimum: 0 },
        },
      },
    },
  },
};

/** The CheckRequest of the POST, its body as Envoy's with_request_body sends it. */
function postRequest(token: string, i: number): unknown {
  const req = checkRequest(token, i) as { attributes: { request: { http: Record<string, unknown> & { headers: Record<string, string> } } } };
  const http = req.attributes.request.http;
  const body = orderBody(i);
  const path = `/orders/${ORDER}/lines?dry_run=false`;
  http.method = 'POST';
  http.path = path;
  http.body = body;
  http.size = String(Buffer.byteLength(body));
  http.headers = { ...http.headers, ':method': 'POST', ':path': path, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  return req;
}

/** CPU microseconds per call of the stage alone, in this process: the figure the machine's other load disturbs least. */
async function stageCost(specFile: string, token: string, calls: number): Promise<number> {
  const config = parseConfig('bench.yaml', JSON.stringify({ openapi: { specs: [{ name: 'orders', file: specFile }] } }));
  const metrics = new Metrics({});
  const stage = await buildOpenApi({ file: specFile, dir: dirname(specFile), config }, config.openapi!, { log: createLogger('silent'), metrics, dryRun: false });
  const req = toRequestView(postRequest(token, 1) as CheckRequest__Output);
  const http = req.raw.attributes!.request!.http!;
  // The policy input has parsed the query and the body already; the stage reuses them.
  const parsed = { query: parseQuery(req.query), body: parseBody(Object.fromEntries(req.headers), http.body ?? '', undefined) };
  // What the pipeline does per call: match, then validate inside its span (stage timing, inventory and metrics included).
  const once = async (): Promise<void> => {
    const m = stage.match(req, undefined);
    if (!m || (await childSpan('openapi.validate', {}, () => Promise.resolve(stage.check(req, m, parsed)), metrics))) throw new Error('the bench request does not match its operation');
  };
  try {
    for (let i = 0; i < Math.min(calls, 20000); i++) await once();
    const t = process.cpuUsage();
    for (let i = 0; i < calls; i++) await once();
    const d = process.cpuUsage(t);
    return Math.round(((d.user + d.system) / calls) * 100) / 100;
  } finally {
    await metrics.shutdown();
  }
}

export async function runOpenApi(b: Bench): Promise<OpenApiResults> {
  const tokens = b.quick ? 50 : 1000;
  const f = await checkFixtures(tokens);
  // The Check scenario's Rego rule; the reader role may POST under /orders.
  const src = join(b.workDir, 'openapi-policy');
  mkdirSync(src, { recursive: true });
  copyFileSync(join(ROOT, 'bench', 'policies', 'ours.rego'), join(src, 'policy.rego'));
  writeFileSync(join(src, 'data.json'), JSON.stringify({ rbac: { roles: { reader: [{ method: 'POST', path_prefix: '/orders' }] } } }));
  const bundle = join(b.workDir, 'openapi-policy.tar.gz');
  execFileSync(opaBinary(), ['build', '-b', '-t', 'wasm', '-e', 'envoy/authz/allow', '-o', bundle, src], { stdio: 'pipe' });
  const jwksFile = join(b.workDir, 'openapi-jwks.json');
  writeFileSync(jwksFile, f.jwksJson);
  const specFile = join(b.workDir, 'orders.json');
  writeFileSync(specFile, JSON.stringify(SPEC));
  const base = {
    authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: jwksFile } }] } },
    policy: { bundle: { file: bundle } },
  };
  const data = f.tokens.ES256.allow.map((t, i) => postRequest(t, i));
  const bodyBytes = Buffer.byteLength(orderBody(0));
  b.log(`openapi: ${tokens} tokens, body ${bodyBytes} bytes, 10 fields`);

  // The servers up at once (idle ones cost nothing), runs alternating so that drift in the
  // machine's other load hits all alike; each figure is the median of its runs by CPU per call.
  // `offAgain` is the `off` config a second time: how far apart two identical servers measure.
  type Name = 'off' | 'offAgain' | 'on';
  const names: readonly Name[] = ['off', 'offAgain', 'on'];
  const start = (name: Name): Promise<Server> =>
    startOurs(b.workDir, `openapi-${name}`, name === 'on' ? { ...base, openapi: { specs: [{ name: 'orders', file: specFile }] } } : base, { cpus: b.serverCpus });
  const servers = { off: await start('off'), offAgain: await start('offAgain'), on: await start('on') };
  const runs: Record<Name, LoadResult[]> = { off: [], offAgain: [], on: [] };
  try {
    for (const name of names) await warmUp(b, { method: CHECK, address: servers[name].address, data });
    for (let i = 0; i < (b.quick ? 1 : 7); i++) {
      for (const name of names) {
        const r = await measure(b, `validation ${name}`, { method: CHECK, address: servers[name].address, data }, { server: servers[name].pid });
        const ok = r.statuses.OK ?? 0;
        if (ok < r.requests * 0.99) throw new Error(`validation ${name}: only ${ok} of ${r.requests} calls allowed: ${JSON.stringify(r.statuses)}`);
        runs[name].push(r);
      }
    }
  } finally {
    await Promise.all(names.map((n) => servers[n].stop()));
  }
  const median = (rs: LoadResult[]): LoadResult => [...rs].sort((x, y) => (x.serverCpuUs ?? 0) - (y.serverCpuUs ?? 0))[Math.floor(rs.length / 2)]!;
  const off = median(runs.off);
  const offAgain = median(runs.offAgain);
  const on = median(runs.on);
  const added = (r: LoadResult): number => Math.round((ratio(r.serverCpuUs ?? Number.NaN, off.serverCpuUs ?? Number.NaN) - 1) * 1000) / 10;
  const cpuAddedPercent = added(on);
  const noisePercent = added(offAgain);
  b.log(`openapi: CPU per call ${off.serverCpuUs} -> ${on.serverCpuUs} us (${cpuAddedPercent}%); the same config twice: ${noisePercent}%`);
  const stageUs = await stageCost(specFile, f.tokens.ES256.allow[0]!, b.quick ? 20000 : 200000);
  b.log(`openapi: the stage alone, in process: ${stageUs} us per call`);
  return { bodyBytes, fields: 10, off, offAgain, on, cpuAddedPercent, noisePercent, stageUs };
}
