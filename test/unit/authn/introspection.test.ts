import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Introspector, introspectorOptions } from '../../../src/authn/introspection.js';
import type { IntrospectionConfig } from '../../../src/config/schema.js';
import { UnavailableError } from '../../../src/lib/errors.js';
import { loopbackServer, sendJson } from '../../helpers/http.js';
import { tempDir } from '../../helpers/tmp.js';

async function body(req: IncomingMessage): Promise<URLSearchParams> {
  let text = '';
  for await (const c of req as AsyncIterable<Buffer>) text += c.toString();
  return new URLSearchParams(text);
}

const code = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code,
  );

describe('Introspector (RFC 7662)', () => {
  const tmp = tempDir();
  tmp.write('secret', 'client-secret\n');
  const now = Math.floor(Date.now() / 1000);
  const tokens: Record<string, Record<string, unknown>> = {
    good: { active: true, sub: 'alice', iss: 'https://as.test', aud: ['api'], exp: now + 300, scope: 'read write', jti: 'j-1' },
    inactive: { active: false },
    expired: { active: true, sub: 'a', iss: 'https://as.test', aud: 'api', exp: now - 5 },
    noexp: { active: true, sub: 'a', iss: 'https://as.test', aud: 'api' },
    wrongaud: { active: true, sub: 'a', iss: 'https://as.test', aud: 'other', exp: now + 300 },
    wrongiss: { active: true, sub: 'a', iss: 'https://evil.test', aud: 'api', exp: now + 300 },
    clientonly: { active: true, client_id: 'svc-1', iss: 'https://as.test', aud: 'api', exp: now + 300 },
  };
  let calls = 0;
  let lastAuth = '';

  const cfg = (url: string, over: Partial<IntrospectionConfig> = {}): IntrospectionConfig => ({
    url,
    client_id: 'envoy-authz',
    client_secret_file: 'secret',
    issuer: 'https://as.test',
    audiences: ['api'],
    timeout_ms: 300,
    cache_ttl_s: 60,
    cache_max_entries: 100,
    allow_insecure_http: true,
    claims: { scopes: 'scope', roles: 'roles' },
    ...over,
  });

  it('accepts an active token, authenticates to the endpoint, and caches by token hash', async () => {
    const as = await loopbackServer((req, res) => {
      calls += 1;
      lastAuth = req.headers.authorization ?? '';
      void body(req).then((b) => sendJson(res, tokens[b.get('token') ?? ''] ?? { active: false }));
    });
    const i = new Introspector(await introspectorOptions({ file: 'c.yaml', dir: tmp.dir }, cfg(`${as.url}/introspect`)));
    expect(await i.verify('good')).toMatchObject({ kind: 'subject', method: 'introspection', subject: 'alice', issuer: 'https://as.test', scopes: ['read', 'write'], jti: 'j-1' });
    expect(lastAuth).toBe(`Basic ${Buffer.from('envoy-authz:client-secret').toString('base64')}`);
    await i.verify('good');
    expect(calls).toBe(1);
    i.clear();
    await i.verify('good');
    expect(calls).toBe(2);
    expect(await i.verify('clientonly')).toMatchObject({ subject: 'svc-1' });
  });

  it('denies inactive, expired, exp-less, wrong-audience and wrong-issuer tokens', async () => {
    const as = await loopbackServer((req, res) => void body(req).then((b) => sendJson(res, tokens[b.get('token') ?? ''] ?? { active: false })));
    const i = new Introspector(await introspectorOptions({ file: 'c.yaml', dir: tmp.dir }, cfg(`${as.url}/introspect`)));
    expect(await code(i.verify('inactive'))).toBe('token_inactive');
    expect(await code(i.verify('unknown'))).toBe('token_inactive');
    expect(await code(i.verify('expired'))).toBe('token_expired');
    expect(await code(i.verify('noexp'))).toBe('claim_invalid');
    expect(await code(i.verify('wrongaud'))).toBe('claim_invalid');
    expect(await code(i.verify('wrongiss'))).toBe('claim_invalid');
  });

  it('never caches beyond exp', async () => {
    let t = Date.now();
    let hits = 0;
    const as = await loopbackServer((_req, res) => {
      hits += 1;
      sendJson(res, { active: true, sub: 'a', iss: 'https://as.test', aud: 'api', exp: Math.floor(t / 1000) + 2 });
    });
    const i = new Introspector(await introspectorOptions({ file: 'c.yaml', dir: tmp.dir }, cfg(`${as.url}/i`)), () => t);
    await i.verify('short');
    await i.verify('short');
    expect(hits).toBe(1);
    t += 3000;
    await i.verify('short').catch(() => undefined);
    expect(hits).toBe(2);
  });

  it('fails closed on endpoint errors, timeouts and garbage', async () => {
    const err = await loopbackServer((_req, res) => sendJson(res, { error: 'x' }, 500));
    const hang = await loopbackServer(() => undefined);
    const junk = await loopbackServer((_req, res) => res.end('not json'));
    for (const url of [err.url, hang.url, junk.url, 'http://127.0.0.1:1/closed']) {
      const i = new Introspector(await introspectorOptions({ file: 'c.yaml', dir: tmp.dir }, cfg(url)));
      const e = await i.verify('good').catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UnavailableError);
      expect((e as UnavailableError).code).toBe('introspection_unavailable');
    }
  });
});
