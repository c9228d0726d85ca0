// The chart as an Istio gateway would run it, end to end: envoy-authz started with the authz.yaml
// and rate-limit files the chart renders (only /etc/envoy-authz moved to a temp dir, addresses on
// loopback), a real Redis, and a real Envoy whose filters and descriptors are the chart's
// EnvoyFilter applied to envoy/envoy.yaml. Per-user limits keyed on the verified identity, in
// renamed headers, with an operator's own descriptor, hold through it.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream } from '../../../src/dev/echo-upstream.js';
import { devCerts } from '../../helpers/certs.js';
import { send } from '../../helpers/client.js';
import { envoyPorts, renderEnvoyConfig, startEnvoy, type RunningEnvoy } from '../../helpers/envoy.js';
import { freePort } from '../../helpers/ports.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../../helpers/keys.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { spawnService, type ServiceProcess } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';
import { CHART, only, render, type K8sDoc } from './chart.js';
import { applyRateLimitFilter, type Bootstrap, type EnvoyFilter } from './envoyfilter.js';

const POD_DIR = '/etc/envoy-authz';

describe('the chart (istio-gateway values) through real Envoy, envoy-authz and Redis', () => {
  const tmp = tempDir();
  let key: TestKey;
  let redis: TestRedis;
  let authz: ServiceProcess;
  let envoy: RunningEnvoy;
  let upstream: Server;
  let http: string;
  const seen: Record<string, string | string[] | undefined>[] = [];

  beforeAll(async () => {
    key = await makeKey();
    redis = await startRedis();
    const issuers = [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: `${POD_DIR}/jwks/jwks.json` } }];
    const docs = render(['deploy/helm/envoy-authz/ci/istio-gateway-values.yaml'], [`redis.url=${redis.url}`], CHART, [
      '--set-json',
      `config.authentication.jwt.issuers=${JSON.stringify(issuers)}`,
    ]);
    // The pod's files, where the chart mounts them (below a temp dir instead of /etc/envoy-authz).
    const podDir = join(tmp.dir, 'pod');
    const put = (path: string, text: string): void => {
      const file = join(podDir, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text, { mode: 0o600 });
    };
    const [grpcPort, adminPort] = [await freePort(), await freePort()];
    const secret = docs.find((d: K8sDoc) => d.kind === 'Secret' && d.metadata.name.endsWith('-config'))!;
    put(
      'config/authz.yaml',
      secret.stringData!['authz.yaml']!.replaceAll(`${POD_DIR}/`, `${podDir}/`)
        .replace('address: 0.0.0.0:9191', `address: 127.0.0.1:${grpcPort}`)
        .replace('address: 0.0.0.0:9192', `address: 127.0.0.1:${adminPort}`),
    );
    for (const [name, text] of Object.entries(docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-ratelimit'))!.data!)) put(`ratelimit/${name}`, text);
    put('jwks/jwks.json', JSON.stringify(jwks(key)));
    authz = await spawnService(['--config', join(podDir, 'config', 'authz.yaml')]);

    const echo = await startEchoUpstream('127.0.0.1', 0, (h) => seen.push(h));
    upstream = echo.server;
    const ports = await envoyPorts(grpcPort, echo.port);
    const file = renderEnvoyConfig(ports, devCerts(join(tmp.dir, 'certs')).dir, join(tmp.dir, 'envoy.yaml'));
    const boot = parse(readFileSync(file, 'utf8')) as Bootstrap;
    applyRateLimitFilter(boot, only<EnvoyFilter>(docs, 'EnvoyFilter'), 'ext_authz');
    writeFileSync(file, stringify(boot, { aliasDuplicateObjects: false }));
    envoy = await startEnvoy(file, ports.admin);
    http = `http://127.0.0.1:${ports.http}`;
    // The first calls after start pay for cold paths (the first JWT verification, the Redis
    // script); on a loaded two-core machine they can outlast Envoy's 150-200 ms timeouts (Envoy
    // then fails closed: 503/500). Warm up with another user, bounded.
    for (let i = 0; i < 20 && (await get('/orders', 'warmup')) !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  }, 60_000);

  afterAll(async () => {
    await envoy?.stop();
    await authz?.stop();
    upstream?.close();
    await redis?.stop();
  });

  const get = async (path: string, sub: string, headers: Record<string, string> = {}): Promise<number> =>
    (await send(`${http}${path}`, { headers: { authorization: `Bearer ${await signToken(key, { sub })}`, ...headers } })).status;

  it('limits checkouts per verified user (5 a minute, the operator\'s descriptor) in Redis, whatever header the client sends', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push(await get('/checkout', 'alice'));
    expect(codes).toEqual([200, 200, 200, 200, 200]);
    // The identity header is the configured one, set by ext_authz.
    expect(seen.at(-1)!['x-user']).toBe('alice');
    expect(await get('/checkout', 'alice')).toBe(429);
    // A client-sent identity header does not move alice to another bucket: ext_authz overwrites it.
    expect(await get('/checkout', 'alice', { 'x-user': 'bob' })).toBe(429);
    // Another user, and alice elsewhere, are still served.
    expect(await get('/checkout', 'bob')).toBe(200);
    expect(await get('/orders', 'alice')).toBe(200);
    // The buckets are in Redis (shared by every pod), under the chart's redis.key_prefix.
    expect((await redis.client.keys('envoy-authz:rl:*')).length).toBeGreaterThan(0);
  });

  it('an unauthenticated request is refused by ext_authz before any rate limit', async () => {
    expect((await send(`${http}/checkout`, { headers: { 'x-user': 'alice' } })).status).toBe(401);
  });
});
