// gRPC over node:http2, for the handful of methods this service serves (unary Check,
// ShouldRateLimit, Health/Check and List; server-streaming Health/Watch). Why not grpc-js's
// Server: per call it spends about as much CPU again as the HTTP/2 work itself (interceptor
// chains, channelz, per-call timers), which at 1,000 calls/s doubled the cost of an empty
// handler (docs/performance.md). Handlers keep grpc-js's signatures (call.request,
// call.metadata, call.getDeadline(), callback / call.write), so the adapters do not change.
//
// What it implements of the gRPC HTTP/2 protocol: POST with content-type application/grpc*,
// length-prefixed uncompressed messages (a compressed one is refused), grpc-timeout as the
// call's deadline, response headers + message + trailers, trailers-only errors with a
// percent-encoded grpc-message, message size caps on both directions, keepalive pings,
// graceful (GOAWAY) and forced shutdown, TLS with optional client certificates.
import { EventEmitter } from 'node:events';
import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';

export interface TransportOptions {
  readonly maxReceiveBytes: number;
  readonly maxSendBytes: number;
  readonly maxConcurrentStreams: number;
  /** Ping an idle connection this often; drop it when the answer does not come within the timeout. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When set, a client certificate chaining to it is required. */
  readonly ca?: Buffer;
}

/** An error a handler passes to its callback (the shape of grpc-js's ServiceError). */
export interface CallError {
  code?: number;
  details?: string;
  message?: string;
}

type Callback = (err: CallError | null, response?: unknown) => void;
type Handler = (call: Call, callback: Callback) => void;

interface Method {
  readonly responseStream: boolean;
  readonly deserialize: (buf: Buffer) => unknown;
  readonly serialize: (value: unknown) => Buffer;
  readonly handler: Handler;
}

const GRPC_CONTENT_TYPE = 'application/grpc';
const HEADER_BYTES = 5;
// Request headers that are transport, not call metadata.
const RESERVED = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent']);
const TIMEOUT_UNITS: Record<string, number> = { H: 3600000, M: 60000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** grpc-timeout ("100m", "5S", ...) as an absolute deadline in ms since the epoch; Infinity when absent or malformed. */
export function parseGrpcTimeout(value: string | undefined, now = Date.now()): number {
  const m = value === undefined ? null : /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? now + Number(m[1]) * TIMEOUT_UNITS[m[2]!]! : Infinity;
}

/** grpc-message: percent-encoded outside printable ASCII (and '%' itself), as the gRPC spec says. */
export function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}

/** A length-prefixed gRPC message. */
function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** One call, shaped like grpc-js's ServerUnaryCall / ServerWritableStream as far as the handlers use them. */
export class Call extends EventEmitter {
  cancelled = false;
  private readonly metadataMap: Record<string, string>;
  readonly metadata: { getMap(): Record<string, string> };

  constructor(
    readonly request: unknown,
    headers: IncomingHttpHeaders,
    private readonly deadline: number,
    private readonly writeMessage: (value: unknown) => boolean,
    private readonly endStream: () => void,
  ) {
    super();
    const map: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) if (k[0] !== ':' && !RESERVED.has(k) && typeof v === 'string') map[k] = v;
    this.metadataMap = map;
    this.metadata = { getMap: () => this.metadataMap };
  }

  getDeadline(): number {
    return this.deadline;
  }

  /** Server streaming: send one message. */
  write(value: unknown): boolean {
    return this.writeMessage(value);
  }

  /** Server streaming: end the call with OK. */
  end(): void {
    this.endStream();
  }
}

export class GrpcServer {
  private readonly methods = new Map<string, Method>();
  private server: Http2Server | Http2SecureServer | undefined;
  private readonly sessions = new Set<Http2Session>();

  constructor(private readonly opts: TransportOptions) {}

  /** Registers every method of a service definition (proto-loader's), implementations by name or original name. */
  addService(service: ServiceDefinition, implementation: Record<string, unknown>): void {
    for (const [name, def] of Object.entries(service)) {
      const handler = implementation[name] ?? (def.originalName !== undefined ? implementation[def.originalName] : undefined);
      if (typeof handler !== 'function') continue;
      if (def.requestStream) throw new Error(`${def.path}: client streaming is not supported`);
      this.methods.set(def.path, {
        responseStream: def.responseStream,
        deserialize: def.requestDeserialize as (buf: Buffer) => unknown,
        serialize: def.responseSerialize as (value: unknown) => Buffer,
        handler: handler as Handler,
      });
    }
  }

  /** Listens on host:port (port 0: any); resolves with the bound port. */
  bind(address: string, tls: TlsMaterial | undefined): Promise<number> {
    const sep = address.lastIndexOf(':');
    const host = address.slice(0, sep).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(sep + 1));
    const settings = { maxConcurrentStreams: this.opts.maxConcurrentStreams, maxHeaderListSize: 65536 };
    const server = tls
      ? createSecureServer({ cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}), minVersion: 'TLSv1.2', settings })
      : createServer({ settings });
    this.server = server;
    server.on('session', (session) => this.track(session));
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`bind ${err.code ?? 'error'} ${address}`)));
      server.listen({ host, port }, () => {
        const bound = server.address();
        resolve(typeof bound === 'object' && bound ? bound.port : port);
      });
    });
  }

  /** Stops accepting; open connections get GOAWAY and finish their calls. `done` runs once all are closed. */
  tryShutdown(done: () => void): void {
    const server = this.server;
    if (!server) return done();
    server.close(() => done());
    for (const s of this.sessions) s.close();
  }

  /** Cuts every connection and call now. */
  forceShutdown(): void {
    this.server?.close();
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }

  private track(session: Http2Session): void {
    this.sessions.add(session);
    session.on('error', () => undefined); // a broken connection ends its calls; nothing else to do
    const timer = setInterval(() => {
      let answered = false;
      const giveUp = setTimeout(() => {
        if (!answered) session.destroy();
      }, this.opts.keepaliveTimeoutMs);
      giveUp.unref();
      if (!session.ping((err) => {
        answered = !err;
        clearTimeout(giveUp);
      })) clearTimeout(giveUp);
    }, this.opts.keepaliveTimeMs);
    timer.unref();
    session.once('close', () => {
      clearInterval(timer);
      this.sessions.delete(session);
    });
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined); // reset by the peer: the call is cancelled below
    const contentType = headers['content-type'];
    if (headers[':method'] !== 'POST' || typeof contentType !== 'string' || !contentType.startsWith(GRPC_CONTENT_TYPE)) {
      stream.respond({ ':status': constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE }, { endStream: true });
      return;
    }
    const method = this.methods.get(headers[':path'] ?? '');
    if (!method) return this.fail(stream, status.UNIMPLEMENTED, `The server does not implement the method ${headers[':path'] ?? ''}`);
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return this.fail(stream, status.UNIMPLEMENTED, `compression ${String(encoding)} is not supported`);

    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > this.opts.maxReceiveBytes + HEADER_BYTES) {
        refused = true;
        this.fail(stream, status.RESOURCE_EXHAUSTED, `received message larger than max (${size} vs. ${this.opts.maxReceiveBytes})`);
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => {
      if (refused) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const length = body.length >= HEADER_BYTES ? body.readUInt32BE(1) : -1;
      if (length < 0 || body.length !== HEADER_BYTES + length) return this.fail(stream, status.INTERNAL, 'expected exactly one request message');
      if (body[0] !== 0) return this.fail(stream, status.UNIMPLEMENTED, 'compressed messages are not supported');
      let request: unknown;
      try {
        request = method.deserialize(body.subarray(HEADER_BYTES));
      } catch {
        return this.fail(stream, status.INTERNAL, 'request message could not be parsed');
      }
      this.dispatch(stream, headers, method, request);
    });
  }

  private dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: Method, request: unknown): void {
    let responded = false;
    const open = (): boolean => !stream.closed && !stream.destroyed;
    const sendHeaders = (): void => {
      if (!stream.headersSent) stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
    };
    // One response message, framed and within the size cap; or the error that ends the call.
    const encode = (value: unknown): Buffer | CallError => {
      let body: Buffer;
      try {
        body = method.serialize(value);
      } catch {
        return { code: status.INTERNAL, details: 'response could not be serialized' };
      }
      return body.length > this.opts.maxSendBytes ? { code: status.RESOURCE_EXHAUSTED, details: 'response larger than the configured max' } : frame(body);
    };
    const write = (value: unknown): boolean => {
      if (responded || !open()) return false;
      const framed = encode(value);
      if (!Buffer.isBuffer(framed)) {
        finish(framed);
        return false;
      }
      sendHeaders();
      return stream.write(framed);
    };
    const finish = (err: CallError | null): void => {
      if (responded) return;
      responded = true;
      if (!open()) return;
      const code = err ? (err.code ?? status.UNKNOWN) : status.OK;
      const message = err ? (err.details ?? err.message ?? '') : '';
      if (!stream.headersSent) {
        if (err) return this.fail(stream, code, message);
        sendHeaders();
      }
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(code), ...(message ? { 'grpc-message': encodeGrpcMessage(message) } : {}) }));
      stream.end();
    };
    const call = new Call(request, headers, parseGrpcTimeout(headers['grpc-timeout'] as string | undefined), write, () => finish(null));
    stream.once('close', () => {
      if (responded) return;
      call.cancelled = true;
      call.emit('cancelled');
    });
    // A handler that throws fails its call, never the process (and never says why to the caller).
    const run = (cb: Callback): void => {
      try {
        method.handler(call, cb);
      } catch {
        finish({ code: status.INTERNAL, details: 'internal error' });
      }
    };
    if (method.responseStream) return run(() => undefined);
    run((err, response) => {
      if (err || !open()) return finish(err);
      const framed = encode(response);
      if (!Buffer.isBuffer(framed)) return finish(framed);
      // Headers, message and end of stream in one go; the trailers follow.
      responded = true;
      sendHeaders();
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(framed);
    });
  }

  /** A trailers-only answer: the status in the response headers, no message. */
  private fail(stream: ServerHttp2Stream, code: number, message: string): void {
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
  }
}
