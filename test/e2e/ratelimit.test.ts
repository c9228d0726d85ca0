// End to end: Envoy's ratelimit filter after ext_authz, asking envoy-authz's RateLimitService
// with descriptors built from the verified identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

describe('per-user rate limits through Envoy', () => {
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
    rate_limit: {name: per-user, unit: day, requests_per_unit: 3}
`,
    );
    stack = await startStack(tmp, {
      authentication: { jwt: { issuers: [jwksFileIssuer()] }, brute_force: { max_failures: 3, window_s: 60 } },
      ratelimit: { files: ['limits.yaml'], algorithm: 'fixed_window', headers: 'both' },
    });
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
  });
  afterAll(() => stack?.stop());

  const get = async (sub: string) => send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${await signToken(key, { sub })}` } });

  it('the N+1th request of a user gets 429 with Retry-After and RateLimit headers; another user is still served', async () => {
    const first = await get('carol');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"per-user";q=3;w=86400');
    expect(first.headers.ratelimit).toMatch(/^"per-user";r=2;t=\d+$/);
    expect(first.headers['x-ratelimit-remaining']).toBe('2');
    expect((await get('carol')).status).toBe(200);
    expect((await get('carol')).status).toBe(200);
    const limited = await get('carol');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers.ratelimit).toMatch(/^"per-user";r=0;t=\d+$/);
    expect((await get('dave')).status).toBe(200);
  });

  it('a client cannot pick its own rate-limit identity: spoofed x-auth-subject is replaced', async () => {
    const r = await send(`${stack.http}/orders`, {
      headers: { authorization: `Bearer ${await signToken(key, { sub: 'erin' })}`, 'x-auth-subject': 'carol' },
    });
    expect(r.status).toBe(200);
  });

  it('answers 429 after repeated failed authentications from one address, before verifying', async () => {
    const bad = { authorization: `Bearer ${await signToken(await makeKey(), { sub: 'mallory' })}` };
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await send(`${stack.http}/orders`, { headers: bad })).status);
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    // Audit lines are written after the answer, asynchronously: wait for them (up to 2 s).
    const tooMany = (): number => stack.authz.lines.filter((l) => l.event === 'check' && l.reason === 'too_many_failures').length;
    for (let t = 0; t < 40 && tooMany() < 2; t++) await new Promise((r) => setTimeout(r, 50));
    expect(tooMany()).toBe(2);
  });
});
