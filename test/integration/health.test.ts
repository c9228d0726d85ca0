// Health that matches reality: /readyz, gRPC health and envoy_authz_dependency_up agree, per
// dependency, as docs/operations.md ("Health and readiness") says.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { healthCheck } from '../helpers/grpc.js';
import { loopbackServer } from '../helpers/http.js';
import { buildBundle } from '../helpers/opa.js';
import { startRedis } from '../helpers/redis.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const REGO = 'package envoy.authz\n\nimport rego.v1\n\ndefault allow := true\n';

async function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('health, readiness and dependency metrics agree', () => {
  const tmp = tempDir();

  it('a policy with no active bundle: unready for Check everywhere, rate limits still served; then ready once a bundle arrives', async () => {
    const bundle = readFileSync(buildBundle(tmp.dir, 'health', { rego: REGO, revision: 'H1' }));
    let available = false;
    const server = await loopbackServer((_req, res) => {
      if (!available) return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'application/gzip' }).end(bundle);
    });
    tmp.write('limits.yaml', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 10 }\n');
    const svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }],
          policy: { bundle: { url: `${server.url}/bundle.tar.gz`, poll_interval_ms: 200, allow_insecure_http: true } },
          ratelimit: { files: ['limits.yaml'] },
        }),
      ),
    );
    const readyz = async (): Promise<number> => (await send(`http://${svc.adminAddress}/readyz`)).status;
    const metrics = async (): Promise<string> => (await send(`http://${svc.adminAddress}/metrics`)).body;
    try {
      await until(async () => (await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')) === 'NOT_SERVING');
      expect(await readyz()).toBe(503);
      expect(await healthCheck(svc.address)).toBe('NOT_SERVING');
      expect(await healthCheck(svc.address, 'envoy.service.ratelimit.v3.RateLimitService')).toBe('SERVING');
      expect(await metrics()).toContain('envoy_authz_dependency_up{dependency="policy"} 0');

      available = true;
      await until(async () => (await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')) === 'SERVING');
      expect(await readyz()).toBe(200);
      expect(await healthCheck(svc.address)).toBe('SERVING');
      const m = await metrics();
      expect(m).toContain('envoy_authz_dependency_up{dependency="policy"} 1');
      expect(m).toContain('envoy_authz_policy_info{revision="H1"} 1');
    } finally {
      await svc.shutdown();
    }
  });

  it('Redis down under a shared deny list: still ready and SERVING on the last loaded list, shown as degraded and in the metric', async () => {
    const redis = await startRedis();
    const svc = await startInProcess(
      tmp.write(
        'redis.yaml',
        configYaml({ server: { address: '127.0.0.1:0' }, revocation: { store: 'redis' }, redis: { url: redis.url, command_timeout_ms: 200, connect_timeout_ms: 200 } }),
      ),
    );
    try {
      expect(await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')).toBe('SERVING');
      await redis.stop();
      await until(async () => (await send(`http://${svc.adminAddress}/metrics`)).body.includes('envoy_authz_dependency_up{dependency="revocation"} 0'));
      const ready = await send(`http://${svc.adminAddress}/readyz`);
      expect(ready.status).toBe(200);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: true, components: { revocation: expect.stringMatching(/^degraded/) as unknown } });
      expect(await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')).toBe('SERVING');
    } finally {
      await svc.shutdown();
    }
  });
});
