// The demo upstream: answers every request with the method, path and headers it received, so one
// can see what Envoy forwarded after ext_authz (identity headers in, caller credentials out).
// A bearer token it receives is not echoed back (an upstream must not hand internal tokens to
// clients); its decoded claims are shown instead.
import { errorMessage } from '../lib/errors.js';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';

function describeAuthorization(value: string | undefined): { authorization?: string; token_claims?: unknown } {
  if (value === undefined) return {};
  const token = value.replace(/^Bearer\s+/i, '');
  try {
    return { authorization: 'Bearer [not echoed]', token_claims: decodeJwt(token) };
  } catch {
    return { authorization: '[not echoed]' };
  }
}

export function startEchoUpstream(
  host: string,
  port: number,
  onRequest?: (headers: IncomingHttpHeaders) => void,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    onRequest?.(req.headers);
    // Drain the body (bounded by Envoy's request size limit) before answering.
    req.resume();
    req.on('end', () => {
      const { authorization, ...rest } = req.headers;
      const body = JSON.stringify({ method: req.method, path: req.url, headers: { ...rest, ...describeAuthorization(authorization) } }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

// Run directly: `node dist/src/dev/echo-upstream.js [port]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2] ?? 9080);
  startEchoUpstream('127.0.0.1', port).then(
    ({ port: p }) => process.stderr.write(`echo upstream on 127.0.0.1:${p}\n`),
    (err: unknown) => {
      process.stderr.write(`echo upstream: ${errorMessage(err)}\n`);
      process.exitCode = 1;
    },
  );
}
