import { describe, expect, it } from 'vitest';
import { denyBody, toCheckResponse } from '../../../src/envoy/response.js';

describe('toCheckResponse', () => {
  it('allows with overwriting identity headers, removals and dynamic metadata', () => {
    const r = toCheckResponse({
      allowed: true,
      route: 'default',
      identity: { subject: 'u1', issuer: 'https://i', kind: 'user', method: 'jwt', scopes: [], roles: [], workload: { id: 'spiffe://d/w', method: 'mtls' }, claims: {} },
      upstreamHeaders: { 'x-auth-subject': 'u1', 'x-auth-issuer': 'https://i' },
      removeHeaders: ['authorization'],
    });
    expect(r.status).toEqual({ code: 0 });
    expect(r.ok_response?.headers).toEqual([
      { header: { key: 'x-auth-subject', value: 'u1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
      { header: { key: 'x-auth-issuer', value: 'https://i' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    ]);
    expect(r.ok_response?.headers_to_remove).toEqual(['authorization']);
    expect(r.dynamic_metadata?.fields?.subject).toEqual({ stringValue: 'u1' });
    expect(r.dynamic_metadata?.fields?.workload).toEqual({ stringValue: 'spiffe://d/w' });
    expect(r.denied_response).toBeUndefined();
  });

  it('answers 401 with WWW-Authenticate and the same body whatever the reason', () => {
    const bodies = new Set<string | undefined>();
    for (const reason of ['credential_missing', 'token_expired', 'signature_invalid', 'issuer_unknown'] as const) {
      const r = toCheckResponse({ allowed: false, route: 'r', status: 401, reason, challenge: 'Bearer' });
      expect(r.status).toEqual({ code: 16 });
      expect(r.denied_response?.status).toEqual({ code: 401 });
      expect(r.denied_response?.headers).toContainEqual({ header: { key: 'www-authenticate', value: 'Bearer' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
      expect(r.denied_response?.body).not.toContain(reason);
      bodies.add(r.denied_response?.body);
    }
    expect(bodies.size).toBe(1);
  });

  it('answers a configured 5xx for failures, with a uniform body and no challenge', () => {
    const r = toCheckResponse({ allowed: false, route: 'error', status: 503, reason: 'deadline_exceeded' });
    expect(r.status).toEqual({ code: 14 });
    expect(r.denied_response?.status).toEqual({ code: 503 });
    expect(r.denied_response?.body).toBe(denyBody(503));
    expect(JSON.stringify(r)).not.toContain('deadline');
    expect(JSON.stringify(r.denied_response?.headers)).not.toContain('www-authenticate');
  });
});
