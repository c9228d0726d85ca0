// CheckRequest / RequestView builders shaped like what Envoy sends.
import type { CheckRequest__Output } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { toRequestView, type RequestView } from '../../src/envoy/request.js';

export interface ReqOptions {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  principal?: string;
  certificate?: string;
  contextExtensions?: Record<string, string>;
}

export function checkRequest(o: ReqOptions = {}): CheckRequest__Output {
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '127.0.0.1', port_value: 50000 }, address: 'socket_address' },
        ...(o.principal ? { principal: o.principal } : {}),
        ...(o.certificate ? { certificate: o.certificate } : {}),
      },
      request: {
        http: {
          id: '1234',
          method: o.method ?? 'GET',
          path: o.path ?? '/orders',
          host: o.host ?? 'api.example.test',
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: { ':method': o.method ?? 'GET', ':path': o.path ?? '/orders', 'x-request-id': 'req-1', ...o.headers },
        },
      },
      context_extensions: o.contextExtensions ?? {},
    },
  };
}

export function requestView(o: ReqOptions = {}): RequestView {
  return toRequestView(checkRequest(o));
}
