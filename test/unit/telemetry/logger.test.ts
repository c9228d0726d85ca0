import { describe, expect, it } from 'vitest';
import { REDACTED, createLogger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';

describe('logger redaction', () => {
  it('censors credentials wherever they appear, configured once', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const secret = 'eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln';
    log.info({ authorization: `Bearer ${secret}` }, 'top');
    log.info({ headers: { authorization: `Bearer ${secret}`, cookie: `session=${secret}`, 'x-api-key': secret } }, 'nested');
    log.info({ req: { headers: { authorization: secret, 'proxy-authorization': secret } } }, 'deeper');
    log.info({ token: secret, client_secret: secret, password: secret }, 'fields');
    const text = out.text();
    expect(text).not.toContain(secret);
    expect(text.split(REDACTED).length - 1).toBe(9);
  });

  it('keeps non-sensitive fields', () => {
    const out = capture();
    createLogger('info', out.stream).info({ subject: 'u1', path: '/x' }, 'm');
    expect(JSON.parse(out.text())).toMatchObject({ subject: 'u1', path: '/x', level: 'info', service: 'envoy-authz' });
  });
});
