// Audit records: for an allowed, a denied, a rate-limited and an errored request, the record
// exists with every field the SRG asks for, and no secret appears anywhere in the log.
import { beforeAll, describe, expect, it } from 'vitest';
import { SLOW_ISSUER, startObservedService, type ObservedService } from '../helpers/observed.js';
import type { AuthzClient, RlsClient } from '../helpers/grpc.js';
import { ISSUER, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { tempDir } from '../helpers/tmp.js';

const DECISION_FIELDS = ['time', 'decision_id', 'trace_id', 'request_id', 'source', 'method', 'host', 'path', 'query_keys', 'route', 'allowed', 'status', 'reason', 'duration_ms'];
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('audit records', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: ObservedService['svc'];
  let authz: AuthzClient;
  let rls: RlsClient;

  beforeAll(async () => {
    ({ key, svc, authz, rls } = await startObservedService(tmp, 'domain: a\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 1, name: per-user}\n'));
  });

  it('records allowed, denied, rate-limited and errored requests completely, and no secret', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const slow = await signToken(key, { iss: SLOW_ISSUER });
    const traceparent = `00-${TRACE}-00f067aa0ba902b7-01`;
    await authz.check(checkRequest({ path: '/orders?limit=5&secret=do-not-log-me', headers: { authorization: `Bearer ${token}`, traceparent, cookie: `s=${token}` } }));
    await authz.check(checkRequest({ path: '/orders', headers: { authorization: `Bearer ${token}x` } }));
    await authz.check(checkRequest({ headers: { authorization: `Bearer ${slow}` } })).catch(() => undefined);
    await rls.shouldRateLimit('a', [[['user', 'alice']]]);
    await rls.shouldRateLimit('a', [[['user', 'alice']]]);

    const lines = svc.logs.lines();
    const allowed = lines.find((l) => l.event === 'check' && l.allowed === true)!;
    const denied = lines.find((l) => l.event === 'check' && l.allowed === false)!;
    for (const rec of [allowed, denied]) for (const f of DECISION_FIELDS) expect(rec, `field ${f}`).toHaveProperty(f);
    expect(allowed).toMatchObject({ trace_id: TRACE, subject: 'alice', issuer: ISSUER, auth_method: 'jwt', status: 200, reason: 'ok', path: '/orders', query_keys: ['limit', 'secret'] });
    expect(denied).toMatchObject({ status: 401, reason: 'signature_invalid' });
    expect(typeof allowed.decision_id).toBe('string');
    expect(allowed.decision_id).not.toBe(denied.decision_id);

    const errored = lines.find((l) => l.event === 'check_error')!;
    expect(errored).toMatchObject({ code: 'deadline_exceeded', allowed: false, method: 'GET', path: '/orders' });
    expect(errored).toHaveProperty('decision_id');

    const limited = lines.find((l) => l.event === 'ratelimit')!;
    expect(limited).toMatchObject({ domain: 'a', limit: 'per-user', shadow: false, descriptor: [{ key: 'user', value: 'alice' }] });

    const text = svc.logs.text();
    for (const t of [token, slow]) for (const part of t.split('.')) expect(text).not.toContain(part);
    expect(text).not.toContain('do-not-log-me');
  });

  it('bounds request fields and masks credentials in them, through the real service', async () => {
    const token = await signToken(key, { sub: 'bob' });
    const before = svc.logs.lines().length;
    const long = 'p'.repeat(40_000);
    await authz.check(checkRequest({ path: `/files/${token}/${long}`, headers: { authorization: `Bearer ${token}`, 'x-request-id': `r${long}` } }));
    await rls.shouldRateLimit('a', [[['user', `${token}${long}`]]]);
    await rls.shouldRateLimit('a', [[['user', `${token}${long}`]]]);
    const text = svc.logs.text();
    for (const line of text.split('\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(4096);
    for (const part of token.split('.')) expect(text).not.toContain(part);
    const recs = svc.logs.lines().slice(before);
    const check = recs.find((l) => l.event === 'check')!;
    expect(check.path).toMatch(/^\/files\/\[REDACTED\](\/p+)?…\[\+\d+\]$/);
    expect((check.path as string).length).toBeLessThan(300);
    expect(check.request_id).toMatch(/^rp{255}…\[\+39745\]$/);
    expect(check.subject).toBe('bob');
    const limited = recs.find((l) => l.event === 'ratelimit')!;
    expect(limited.descriptor).toEqual([{ key: 'user', value: expect.stringMatching(/^\[REDACTED\]…\[\+\d+\]$/) as unknown }]);
  });
});
