// Decision logs through the real service: OPA's event format on every sink (console, file, the
// upload API of a local receiver: gunzipped, parsed, batched, retried after a 500, bearer token),
// joined to the audit record by decision_id; the bundle's system.log.mask on events and audit
// records (also of Checks the policy did not see); our redaction of credentials; the dry-run audit fields; the strip switch of the input.
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse__Output } from '../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { loopbackServer } from '../helpers/http.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildBundle } from '../helpers/opa.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const POLICY = `package envoy.authz
import rego.v1

default allow := false

saw_auth := "yes" if input.attributes.request.http.headers.authorization
else := "no"

allow := {"allowed": true, "headers": {"x-saw-auth": saw_auth}} if input.parsed_path[0] in {"ok", "private"}

allow := {"allowed": false, "http_status": 429} if input.parsed_path[0] == "slow"
`;

const MASK = `package system.log
import rego.v1

mask contains "/input/attributes/request/http/body"

mask contains "/input/attributes/request/http/path" if input.input.parsed_path[0] == "private"

mask contains {"op": "upsert", "path": "/input/identity/subject", "value": "***"} if input.input.parsed_path[0] == "private"
`;

const BEARER = 'upload-token-0123456789abcdef';
const DELAY_S = 3;

/** The fields of an uploaded event this test reads. */
interface Uploaded {
  decision_id: string;
  labels: Record<string, string>;
  timestamp: string;
  metrics: Record<string, number>;
  input: { attributes: { request: { http: { body?: string; path?: string; headers: Record<string, string> } } }; identity: { subject: string }; parsed_path: string[] };
  masked?: string[];
  erased?: string[];
}

interface Upload {
  headers: IncomingMessage['headers'];
  events: Uploaded[];
}

const sawAuth = (r: CheckResponse__Output): string | undefined => r.ok_response?.headers?.find((h) => h.header?.key === 'x-saw-auth')?.header?.value;

describe('decision logs', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;
  const uploads: Upload[] = [];
  let posts = 0;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    tmp.write('upload.token', `${BEARER}\n`);
    buildBundle(tmp.dir, 'dl', { rego: POLICY, files: { 'mask.rego': MASK }, extraEntrypoints: ['system/log/mask'], revision: 'dl-1' });
    // The receiver fails the first upload: the same batch must come again.
    const receiver = await loopbackServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts++;
        if (posts === 1) {
          res.writeHead(500).end();
          return;
        }
        uploads.push({ headers: req.headers, events: JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as Uploaded[] });
        res.writeHead(200).end();
      });
    });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: { jwt: { issuers: [jwksFileIssuer()] } },
          routes: [
            { name: 'trial', match: { path_prefix: '/slow' }, public: true, policy: 'dry_run' },
            { name: 'all', match: { path_prefix: '/' } },
          ],
          policy: { bundle: { file: 'dl.tar.gz' } },
          decision_logs: {
            console: true,
            file: { path: 'decisions.log' },
            service: { url: receiver.url, token_file: 'upload.token', allow_insecure_http: true },
            reporting: { min_delay_seconds: DELAY_S, max_delay_seconds: DELAY_S },
            labels: { cluster: 'test' },
          },
        }),
      ),
    );
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  it('writes one OPA event per decision to every sink, joined to the audit record, masked, retried after a 500, batched', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const authorization = `Bearer ${token}`;
    const ok = checkRequest({ path: '/ok', headers: { authorization } });
    ok.attributes!.request!.http!.body = '{"card":"4111111111111111"}';
    expect(sawAuth(await client.check(ok))).toBe('yes');
    await client.check(checkRequest({ path: '/private/x', headers: { authorization } }));
    await client.check(checkRequest({ path: '/slow', headers: { authorization } }));

    // The upload: after the 500, the same three events in one gzipped array, with the bearer token.
    for (let i = 0; i < 100 && uploads.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(posts).toBe(2);
    const [up] = uploads;
    expect(up!.headers['content-encoding']).toBe('gzip');
    expect(up!.headers['content-type']).toBe('application/json');
    expect(up!.headers.authorization).toBe(`Bearer ${BEARER}`);
    expect(up!.events).toHaveLength(3);

    const audits = svc.logs.lines().filter((l) => l.event === 'check');
    expect(audits).toHaveLength(3);
    const [okEvent, privateEvent, slowEvent] = up!.events;
    expect(okEvent).toMatchObject({
      decision_id: audits[0]!.decision_id,
      path: 'envoy/authz/allow',
      bundles: { 'envoy-authz': { revision: 'dl-1' } },
      result: { allowed: true, headers: { 'x-saw-auth': 'yes' } },
      erased: ['/input/attributes/request/http/body'],
    });
    expect(Object.keys(okEvent!.labels).sort()).toEqual(['cluster', 'id', 'version']);
    expect(okEvent!.labels.cluster).toBe('test');
    expect(Date.parse(okEvent!.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(okEvent!.metrics.timer_rego_query_eval_ns).toBeGreaterThan(0);
    expect(okEvent!.metrics.timer_server_handler_ns).toBeGreaterThanOrEqual(okEvent!.metrics.timer_rego_query_eval_ns!);
    // The body went by the bundle's mask; the credential by our redaction (listed as masked).
    expect(okEvent!.input.attributes.request.http.body).toBeUndefined();
    expect(okEvent!.input.attributes.request.http.headers.authorization).toBe('[REDACTED]');
    expect(okEvent!.masked).toContain('/input/attributes/request/http/headers/authorization');
    expect(okEvent!.input.identity.subject).toBe('alice');
    expect(okEvent!.input.parsed_path).toEqual(['ok']);

    // The mask's conditional rules, on the event and on the audit record alike.
    expect(privateEvent).toMatchObject({ decision_id: audits[1]!.decision_id, erased: ['/input/attributes/request/http/path'] });
    expect(privateEvent!.input.attributes.request.http.path).toBeUndefined();
    expect(privateEvent!.input.identity.subject).toBe('***');
    expect(privateEvent!.masked).toContain('/input/identity/subject');
    expect(audits[1]).not.toHaveProperty('path');
    expect(audits[1]).not.toHaveProperty('query_keys');
    expect(audits[1]).toMatchObject({ subject: '***', erased: ['/input/attributes/request/http/path'], masked: ['/input/identity/subject'], method: 'GET' });
    expect(audits[0]).toMatchObject({ path: '/ok', subject: 'alice' });

    // A dry-run denial: allowed, and the audit record says what enforcing would have answered.
    expect(audits[2]).toMatchObject({ allowed: true, status: 200, reason: 'dry_run_denied', dry_run_denied: true, would_status: 429 });
    expect(slowEvent).toMatchObject({ decision_id: audits[2]!.decision_id, result: { allowed: false, http_status: 429 } });

    // The same events on the console (one line each) and in the file.
    const consoleEvents = svc.logs.lines().filter((l) => l.event === 'decision_log');
    expect(consoleEvents.map((e) => e.decision_id)).toEqual(audits.map((a) => a.decision_id));
    expect(consoleEvents[0]).toMatchObject({ msg: 'Decision Log', type: 'openpolicyagent.org/decision_logs', path: 'envoy/authz/allow' });
    const fileEvents = readFileSync(join(tmp.dir, 'decisions.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Uploaded);
    expect(fileEvents).toEqual(up!.events);

    // A Check the policy never saw (no credential): no event, but the mask hides its path too.
    await client.check(checkRequest({ path: '/private/y' }));
    const unauthenticated = svc.logs.lines().filter((l) => l.event === 'check').at(-1)!;
    expect(unauthenticated).toMatchObject({ allowed: false, status: 401, reason: 'credential_missing', erased: ['/input/attributes/request/http/path'] });
    expect(unauthenticated).not.toHaveProperty('path');
    expect(svc.logs.lines().filter((l) => l.event === 'decision_log')).toHaveLength(3);

    // No credential anywhere: not the caller's token, not the upload token.
    const everything = [svc.logs.text(), readFileSync(join(tmp.dir, 'decisions.log'), 'utf8'), JSON.stringify(uploads.map((u) => u.events))].join('\n');
    for (const part of token.split('.')) expect(everything).not.toContain(part);
    expect(everything).not.toContain(BEARER);
    expect(everything).not.toContain('4111111111111111');
  }, 30_000);
});

describe('policy.input.strip_credential_headers', () => {
  const tmp = tempDir();

  it('keeps the credential headers in the input by default (as opa-envoy-plugin), removes them when set', async () => {
    const key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildBundle(tmp.dir, 'p', { rego: POLICY });
    const token = await signToken(key, { sub: 'alice' });
    const saw: Record<string, string | undefined> = {};
    for (const strip of [false, true]) {
      const svc = await startInProcess(
        tmp.write(
          `authz-${strip}.yaml`,
          configYaml({
            server: { address: '127.0.0.1:0' },
            authentication: { jwt: { issuers: [jwksFileIssuer()] } },
            policy: { bundle: { file: 'p.tar.gz' }, input: { strip_credential_headers: strip } },
          }),
        ),
      );
      const client = authzClient(svc.address);
      try {
        const r = await client.check(checkRequest({ path: '/ok', headers: { authorization: `Bearer ${token}` } }));
        saw[String(strip)] = sawAuth(r);
      } finally {
        client.close();
        await svc.shutdown();
      }
    }
    expect(saw).toEqual({ false: 'yes', true: 'no' });
  }, 30_000);
});
