import { describe, expect, it } from 'vitest';
import { denyBody, toCheckResponse } from '../../../src/envoy/response.js';
import { toPolicyDecision } from '../../../src/policy/decision.js';

describe('toCheckResponse', () => {
  it('gives each answer its own route, issuer, kind, method and revision (the Values kept while they repeat are frozen)', () => {
    const answer = (route: string, issuer: string, rev: string) =>
      toCheckResponse({
        allowed: true,
        route,
        identity: { subject: 's', issuer, kind: 'user', method: 'jwt', scopes: [], roles: [], claims: {} },
        upstreamHeaders: {},
        removeHeaders: [],
        policyRevision: rev,
      }).dynamic_metadata?.fields;
    const a = answer('a', 'https://i1', 'r1');
    const b = answer('b', 'https://i2', 'r2');
    const a2 = answer('a', 'https://i1', 'r1');
    expect([a?.route, a?.issuer, a?.policy_revision]).toEqual([{ stringValue: 'a' }, { stringValue: 'https://i1' }, { stringValue: 'r1' }]);
    expect([b?.route, b?.issuer, b?.policy_revision]).toEqual([{ stringValue: 'b' }, { stringValue: 'https://i2' }, { stringValue: 'r2' }]);
    expect(a2).toEqual(a);
    expect(Object.isFrozen(a2?.route)).toBe(true);
  });

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

  describe("a denying policy's own answer (issue 12)", () => {
    const policy = toPolicyDecision({ allowed: false, http_status: 401, headers: { 'www-authenticate': 'Bearer' } });
    const deny = (additions: boolean) => toCheckResponse({ allowed: false, route: 'r', status: 401, reason: 'policy_denied', policy, additions, decisionId: 'd-1' });

    it('is PERMISSION_DENIED with the policy\'s header once, and no body of ours with additions off', () => {
      const r = deny(false);
      expect(r.status).toEqual({ code: 7 });
      expect(r.denied_response?.headers).toEqual([{ header: { key: 'www-authenticate', value: 'Bearer' } }]);
      expect(r.denied_response?.body).toBeUndefined();
      expect(r.dynamic_metadata?.fields?.decision_id).toEqual({ stringValue: 'd-1' });
    });

    it('with additions on, adds the uniform body and its headers beside the policy\'s, never a second www-authenticate', () => {
      const r = deny(true);
      expect(r.status).toEqual({ code: 7 });
      const names = (r.denied_response?.headers ?? []).map((h) => h.header?.key);
      expect(names.filter((n) => n === 'www-authenticate')).toHaveLength(1);
      expect(names).toEqual(expect.arrayContaining(['content-type', 'cache-control']));
      expect(r.denied_response?.body).toBe(denyBody(401));
    });

    it('keeps a policy body, also an empty one, whatever the additions', () => {
      const empty = toPolicyDecision({ allowed: false, body: '' });
      const r = toCheckResponse({ allowed: false, route: 'r', status: 403, reason: 'policy_denied', policy: empty, additions: true });
      expect(r.denied_response?.body).toBeUndefined(); // "" is proto3's default: the wire carries the empty body
      expect((r.denied_response?.headers ?? []).map((h) => h.header?.key)).not.toContain('content-type');
    });

    it('lets the policy\'s metadata keys win over ours on an allow', () => {
      const allow = toPolicyDecision({ allowed: true, dynamic_metadata: { route: 'mine', x: 1 } });
      const r = toCheckResponse({ allowed: true, route: 'r', upstreamHeaders: {}, removeHeaders: [], policy: allow, policyRevision: 'rev', decisionId: 'd' });
      expect(r.dynamic_metadata?.fields).toMatchObject({ route: { stringValue: 'mine' }, x: { numberValue: 1 }, policy_revision: { stringValue: 'rev' }, decision_id: { stringValue: 'd' } });
      const off = toCheckResponse({ allowed: true, route: 'r', upstreamHeaders: {}, removeHeaders: [], policy: allow, policyRevision: 'rev', decisionId: 'd', additions: false });
      expect(Object.keys(off.dynamic_metadata?.fields ?? {}).sort()).toEqual(['decision_id', 'route', 'x']);
    });
  });
});
