// The credential-stuffing guard through the real gRPC Check: an attacker can only throttle the
// addresses they send from (never lock out the identity they name), and a failing store never
// turns into a block (DESIGN: "a store error is not 'over limit' for the failure guard").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleApiKey, digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { countedAddress } from '../../src/check/failure-guard.js';
import type { CheckRequest__Output } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { send } from '../helpers/client.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

type Service = Awaited<ReturnType<typeof startInProcess>>;

/** A CheckRequest as Envoy sends it for a client at `address`. */
function from(address: string, headers: Record<string, string>): CheckRequest__Output {
  const req = checkRequest({ headers });
  req.attributes!.source!.address!.socket_address!.address = address;
  return req;
}

/** The HTTP status of Check's answer: 200 for OK, else the denied status. */
async function statusOf(client: AuthzClient, req: CheckRequest__Output): Promise<number> {
  const res = await client.check(req);
  if (res.status?.code === 0) return 200;
  const code = res.denied_response?.status?.code;
  return code === 'TooManyRequests' ? 429 : code === 'Unauthorized' ? 401 : code === 'Forbidden' ? 403 : -1;
}

function authConfig(apiKeysFile: string): Record<string, unknown> {
  return {
    jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } }] },
    api_keys: { file: apiKeysFile },
    brute_force: { max_failures: 3, max_failures_per_address: 10, window_s: 60 },
  };
}

describe('failure guard: no lockout of the identity an attacker names', () => {
  const tmp = tempDir();
  let key: TestKey;
  let forger: TestKey;
  let svc: Service;
  let client: AuthzClient;
  const victimKey = generateApiKey('eak');

  beforeAll(async () => {
    key = await makeKey('ES256');
    // Same kid as the real key: the forged tokens fail on their signature, not on an unknown key.
    forger = await makeKey('ES256', key.kid);
    tmp.write('jwks.json', jwks(key));
    tmp.write('apikeys.yaml', { keys: [{ id: victimKey.id, digest: digestApiKey(victimKey.key), owner: 'svc-victim', expires_at: new Date(Date.now() + 86400_000).toISOString() }] });
    svc = await startInProcess(tmp.write('authz.yaml', configYaml({ server: { address: '127.0.0.1:0' }, authentication: authConfig('apikeys.yaml') })));
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  it('forged JWTs naming a victim from 20 addresses leave the victim allowed from another address', async () => {
    const forged = { authorization: `Bearer ${await signToken(forger, { sub: 'victim' })}` };
    for (let i = 1; i <= 20; i++) {
      for (let n = 0; n < 3; n++) expect(await statusOf(client, from(`198.51.100.${i}`, forged))).toBe(401);
    }
    // Each attacking address has throttled itself for that identity...
    expect(await statusOf(client, from('198.51.100.1', forged))).toBe(429);
    // ...and the victim, elsewhere, is served.
    const valid = { authorization: `Bearer ${await signToken(key, { sub: 'victim' })}` };
    expect(await statusOf(client, from('203.0.113.7', valid))).toBe(200);
  });

  it('wrong secrets for a victim\'s API key id from 20 addresses leave the real key allowed from another address', async () => {
    const wrong = { 'x-api-key': assembleApiKey('eak', victimKey.id, 'x'.repeat(32)) };
    for (let i = 1; i <= 20; i++) {
      for (let n = 0; n < 3; n++) expect(await statusOf(client, from(`192.0.2.${i}`, wrong))).toBe(401);
    }
    expect(await statusOf(client, from('192.0.2.1', wrong))).toBe(429);
    expect(await statusOf(client, from('203.0.113.8', { 'x-api-key': victimKey.key }))).toBe(200);
  });

  it('an address that fails for many identities is blocked for all of them (max_failures_per_address)', async () => {
    const address = '198.18.0.1';
    for (let i = 0; i < 10; i++) {
      const forged = { authorization: `Bearer ${await signToken(forger, { sub: `user-${i}` })}` };
      expect(await statusOf(client, from(address, forged))).toBe(401);
    }
    const valid = { authorization: `Bearer ${await signToken(key, { sub: 'someone-else' })}` };
    expect(await statusOf(client, from(address, valid))).toBe(429);
    expect(await statusOf(client, from('198.18.0.2', valid))).toBe(200);
  });

  it('counts an IPv6 client by its /64: a fresh address per attempt does not escape the count', async () => {
    const forged = { authorization: `Bearer ${await signToken(forger, { sub: 'v6-victim' })}` };
    for (let i = 1; i <= 3; i++) expect(await statusOf(client, from(`2001:db8:7:7::${i}`, forged))).toBe(401);
    expect(await statusOf(client, from('2001:db8:7:7:abcd::99', forged))).toBe(429);
    const valid = { authorization: `Bearer ${await signToken(key, { sub: 'v6-victim' })}` };
    expect(await statusOf(client, from('2001:db8:7:8::1', valid))).toBe(200);
  });
});

describe('countedAddress', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['unix:/run/envoy.sock', 'unix:/run/envoy.sock'],
  ])('%s counts as %s', (address, expected) => {
    expect(countedAddress(address)).toBe(expected);
  });
});

describe('failure guard: a stalled store is not a count', () => {
  const tmp = tempDir();
  let key: TestKey;
  let redis: TestRedis;
  let svc: Service;
  let client: AuthzClient;
  let stalled = false;

  beforeAll(async () => {
    key = await makeKey('ES256');
    redis = await startRedis();
    tmp.write('jwks.json', jwks(key));
    const k = generateApiKey('eak');
    tmp.write('apikeys.yaml', { keys: [{ id: k.id, digest: digestApiKey(k.key), owner: 'svc-a', expires_at: new Date(Date.now() + 86400_000).toISOString() }] });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          // A timed-out count may still land once Redis resumes: thresholds above what this test sends.
          authentication: { ...authConfig('apikeys.yaml'), brute_force: { max_failures: 5, max_failures_per_address: 10, window_s: 60 } },
          ratelimit: { store: 'redis', failure_mode: 'deny' },
          redis: { url: redis.url, command_timeout_ms: 100 },
        }),
      ),
    );
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    if (stalled) process.kill(redis.pid, 'SIGCONT');
    client?.close();
    await svc?.shutdown();
    await redis?.stop();
  });

  const metric = async (): Promise<number> => {
    const text = (await send(`http://${svc.adminAddress}/metrics`)).body;
    const line = text.split('\n').find((l) => l.startsWith('envoy_authz_failure_guard_store_errors'));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('a failed login during a Redis stall blocks nothing (failure_mode deny), and nothing is blocked after recovery', async () => {
    const address = '198.51.100.200';
    const forged = { authorization: `Bearer ${await signToken(await makeKey('ES256', key.kid), { sub: 'carol' })}` };
    const valid = { authorization: `Bearer ${await signToken(key, { sub: 'carol' })}` };
    expect(await statusOf(client, from(address, valid))).toBe(200);

    process.kill(redis.pid, 'SIGSTOP');
    stalled = true;
    expect(await statusOf(client, from(address, forged))).toBe(401);
    expect(await statusOf(client, from(address, forged))).toBe(401);
    // The store said nothing: neither the address nor (address, carol) is blocked.
    expect(await statusOf(client, from(address, valid))).toBe(200);
    expect(await metric()).toBeGreaterThanOrEqual(2);

    process.kill(redis.pid, 'SIGCONT');
    stalled = false;
    // Counting resumes once the store answers again (probed at most every 500 ms); real counts start from what Redis holds.
    const until = Date.now() + 5000;
    while (!svc.logs.lines().some((l) => l.event === 'failure_guard_store_recovered')) {
      expect(Date.now()).toBeLessThan(until);
      expect(await statusOf(client, from(address, forged))).toBe(401);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await statusOf(client, from(address, valid))).toBe(200);
    const events = svc.logs.lines().map((l) => l.event);
    expect(events.filter((e) => e === 'failure_guard_store_failed')).toHaveLength(1);
    expect(events.filter((e) => e === 'failure_guard_store_recovered')).toHaveLength(1);
    // Under redis.key_prefix (default envoy-authz:), as every key.
    expect(await redis.client.exists(`envoy-authz:bf:a:${encodeURIComponent(address)}`)).toBe(1);
  });
});
