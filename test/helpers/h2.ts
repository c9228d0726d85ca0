// Raw HTTP/2 for gRPC tests: requests no well-behaved gRPC client would send (odd content types,
// missing bodies, resets, compressed frames), over node:http2's client on loopback.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { gzipSync } from 'node:zlib';

/** One length-prefixed gRPC message; `compressed` sets the flag (and gzips the payload unless `raw`). */
export function grpcFrame(payload: Buffer, compressed = false, raw = false): Buffer {
  const body = compressed && !raw ? gzipSync(payload) : payload;
  const out = Buffer.alloc(5 + body.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

export interface RawAnswer {
  /** Response headers (the status itself for a trailers-only answer). */
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  data: Buffer;
  /** grpc-status from the trailers, else from the headers. */
  grpcStatus: string | undefined;
  /** RST_STREAM code when the server reset the stream (0 = NO_ERROR after a complete answer). */
  rstCode: number | undefined;
}

export function session(address: string): ClientHttp2Session {
  const s = connect(`http://${address}`);
  s.on('error', () => undefined);
  return s;
}

/**
 * One request: `body` undefined leaves the request open (headers only, no DATA, no END_STREAM).
 * Resolves when the stream closes.
 */
export function rawRequest(s: ClientHttp2Session, path: string, body: Buffer | undefined, headers: OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const req = s.request(
      { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers },
      { endStream: false },
    );
    const chunks: Buffer[] = [];
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    req.on('response', (h: IncomingHttpHeaders) => {
      head = h;
    });
    req.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', () => {
      const st = trailers['grpc-status'] ?? head['grpc-status'];
      resolve({ headers: head, trailers, data: Buffer.concat(chunks), grpcStatus: st === undefined ? undefined : String(st), rstCode: req.rstCode });
    });
    if (body !== undefined) req.end(body);
  });
}

/** A whole call on a connection of its own. */
export async function rawCall(address: string, path: string, body: Buffer | undefined, headers: OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  const s = session(address);
  try {
    return await rawRequest(s, path, body, headers);
  } finally {
    s.close();
  }
}
