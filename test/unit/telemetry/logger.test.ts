import { describe, expect, it } from 'vitest';
import { REDACTED, createLogger, redact } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';

describe('logger redaction', () => {
  const secret = 'eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln';

  it('censors credentials wherever they appear, configured once', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ authorization: `Bearer ${secret}` }, 'top');
    log.info({ headers: { authorization: `Bearer ${secret}`, cookie: `session=${secret}`, 'x-api-key': secret } }, 'nested');
    log.info({ req: { headers: { authorization: secret, 'proxy-authorization': secret } } }, 'deeper');
    log.info({ token: secret, client_secret: secret, password: secret }, 'fields');
    const text = out.text();
    expect(text).not.toContain(secret);
    expect(text.split(REDACTED).length - 1).toBe(9);
  });

  it('censors keys in any case, inside arrays, three levels down and in child bindings', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ a: { b: { c: { Authorization: secret } } } }, 'three down');
    log.info({ calls: [{ headers: { Cookie: secret } }, { ok: 1 }] }, 'array');
    log.child({ api_key: secret }).info('child');
    const text = out.text();
    expect(text).not.toContain(secret);
    expect(text.split(REDACTED).length - 1).toBe(3);
  });

  it('never modifies the caller\'s object and copies nothing when there is nothing to censor', () => {
    const headers = { authorization: secret, accept: 'json' };
    const rec = { headers, path: '/x' };
    const out = redact(rec) as { headers: Record<string, string> };
    expect(out.headers.authorization).toBe(REDACTED);
    expect(headers.authorization).toBe(secret);
    const clean = { subject: 'u1', roles: ['a'], nested: { path: '/x' } };
    expect(redact(clean)).toBe(clean);
  });

  it('keeps non-sensitive fields', () => {
    const out = capture();
    createLogger('info', out.stream).info({ subject: 'u1', path: '/x' }, 'm');
    expect(JSON.parse(out.text())).toMatchObject({ subject: 'u1', path: '/x', level: 'info', service: 'envoy-authz' });
  });
});
