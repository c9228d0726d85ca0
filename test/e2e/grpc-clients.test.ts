// End to end with each of Envoy's gRPC clients: envoy_grpc (Envoy's own HTTP/2 client over the
// ext_authz cluster, as in envoy/envoy.yaml) and google_grpc (gRPC C++ inside Envoy, which Istio
// and many hand-written configs use). The same allow, deny and 429 go through both filters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import type { GrpcClientKind } from '../helpers/envoy.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

/** Envoy's counters whose names match `filter` (a regex), by name. */
async function counters(adminPort: number, filter: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/stats?filter=${encodeURIComponent(filter)}`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+): (\d+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

describe.each<GrpcClientKind>(['envoy_grpc', 'google_grpc'])('Envoy calling envoy-authz with %s', (grpcClient) => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    tmp.write(
      'limits.yaml',
      `domain: envoy-authz
descriptors:
  - key: user
    rate_limit: {name: per-user, unit: day, requests_per_unit: 2}
`,
    );
    stack = await startStack(
      tmp,
      {
        authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } }] } },
        ratelimit: { files: ['limits.yaml'], algorithm: 'fixed_window' },
      },
      { grpcClient },
    );
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
  });
  afterAll(() => stack?.stop());

  const get = async (sub?: string): Promise<Awaited<ReturnType<typeof send>>> =>
    send(`${stack.http}/orders`, sub ? { headers: { authorization: `Bearer ${await signToken(key, { sub })}` } } : {});

  it('allows a valid token: the upstream sees the verified identity', async () => {
    stack.clear();
    const r = await get('alice');
    expect(r.status).toBe(200);
    expect(stack.seen.at(-1)?.['x-auth-subject']).toBe('alice');
    expect(stack.seen.at(-1)?.authorization).toBeUndefined();
  });

  it('denies a missing token with 401 and WWW-Authenticate; the upstream sees nothing', async () => {
    stack.clear();
    const r = await get();
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(r.body)).toEqual({ error: 'unauthenticated', message: 'Valid credentials are required.' });
    expect(stack.seen).toEqual([]);
  });

  it('answers 429 with Retry-After once a user is over the limit', async () => {
    expect((await get('bob')).status).toBe(200);
    expect((await get('bob')).status).toBe(200);
    const limited = await get('bob');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await get('carol')).status).toBe(200);
  });

  it(`both filters called envoy-authz through ${grpcClient}`, async () => {
    // envoy_grpc sends through the ext_authz cluster; google_grpc opens its own channels and counts
    // streams under each filter's stat_prefix (set by renderEnvoyConfig).
    const stats = await counters(stack.ports.admin, '^(cluster\\.ext_authz\\.upstream_rq_total|grpc\\..*\\.streams_total)$');
    if (grpcClient === 'envoy_grpc') {
      expect(stats['cluster.ext_authz.upstream_rq_total']).toBeGreaterThanOrEqual(7);
      expect(Object.keys(stats).filter((k) => k.startsWith('grpc.'))).toEqual([]);
    } else {
      expect(stats['cluster.ext_authz.upstream_rq_total']).toBe(0);
      expect(stats['grpc.ext_authz.streams_total']).toBeGreaterThanOrEqual(6);
      expect(stats['grpc.ratelimit.streams_total']).toBeGreaterThanOrEqual(5);
    }
  });
});
