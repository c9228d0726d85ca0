// policy.input.strip_credential_headers: the credential headers leave the policy input whether
// Envoy sends headers as a map or raw (encode_raw_headers: header_map, headerMap in the input).
import { describe, expect, it } from 'vitest';
import { policyInputBuilder } from '../../../src/envoy/input.js';
import type { CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import type { CheckRequest } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';

function decoded(req: CheckRequest): CheckRequest__Output {
  const m = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  return m.requestDeserialize(m.requestSerialize(req));
}

const b64 = (x: string): string => Buffer.from(x).toString('base64');

describe('strip_credential_headers', () => {
  const strip = policyInputBuilder({ stripHeaders: ['authorization', 'x-api-key'] });
  const keep = policyInputBuilder();

  it('removes them from headers', () => {
    const req = decoded({ attributes: { request: { http: { method: 'GET', path: '/', headers: { authorization: 'Bearer t', 'x-api-key': 'k', accept: '*/*' } } } } });
    const http = (i: Record<string, unknown>): { headers: Record<string, string> } => (i.attributes as { request: { http: { headers: Record<string, string> } } }).request.http;
    expect(http(strip(req, undefined).value()).headers).toEqual({ accept: '*/*' });
    expect(http(keep(req, undefined).value()).headers).toHaveProperty('authorization', 'Bearer t');
  });

  it('removes them from raw headers (headerMap)', () => {
    const req = decoded({
      attributes: {
        request: {
          http: {
            method: 'GET',
            path: '/',
            header_map: { headers: [{ key: 'Authorization', raw_value: b64('Bearer t') }, { key: 'x-api-key', raw_value: b64('k') }, { key: 'accept', raw_value: b64('*/*') }] },
          },
        },
      },
    });
    const keys = (i: Record<string, unknown>): string[] => (i.attributes as { request: { http: { headerMap: { headers: { key: string }[] } } } }).request.http.headerMap.headers.map((h) => h.key);
    expect(keys(strip(req, undefined).value())).toEqual(['accept']);
    expect(keys(keep(req, undefined).value())).toEqual(['Authorization', 'x-api-key', 'accept']);
  });
});
