// gRPC over node:http2, for the handful of methods this service serves (unary Check,
// ShouldRateLimit, Health/Check and List; server-streaming Health/Watch). Why not grpc-js's
// Server: per call it spends about as much CPU again as the HTTP/2 work itself (interceptor
// chains, channelz, per-call objects), which at 1,000 calls/s doubled the cost of an empty
// handler (docs/performance.md "Why our own gRPC transport"). Handlers keep grpc-js's signatures
// (call.request, call.metadata, call.getDeadline(), callback / call.write), so the adapters do not
// change; they also get `call.signal`, aborted when the caller resets the call or its deadline passes.
//
// Protocol (grpc-wire.ts): POST with content-type application/grpc or application/grpc+proto (else
// 415 / 405 like grpc-go); a missing `te: trailers` is accepted, as grpc-go's server does (it never
// reads te); identity and gzip requests, grpc-accept-encoding on every answer; grpc-timeout as
// the deadline, counted from the headers (so it covers the wait for the body), malformed: INTERNAL;
// every call's deadline and body timeout on one monotonic timer queue (deadlines.ts);
// response headers (no date header, as grpc-go) + message + trailers, trailers-only errors with a
// percent-encoded grpc-message; message size caps both ways; repeated and -bin metadata (read in
// place unless a -bin value must be decoded and checked). Hostile peers (connection.ts): preface
// timeout, max age + grace, idle close, ping policy, calls in progress per connection bounded
// (a reset call counts until its handler stops), rapid resets closed; a body that never comes
// is answered DEADLINE_EXCEEDED after body_timeout_ms even without a grpc-timeout.
import { parseHostPort } from '../lib/host-port.js';
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
import { UnavailableError } from '../lib/errors.js';
import { Stop } from '../lib/stop.js';
import { Connection, type CloseReason, type ConnectionLimits } from './connection.js';
import { Deadlines, type Expiring } from './deadlines.js';
import {
  ACCEPT_ENCODING,
  encodeGrpcMessage,
  frame,
  GRPC_CONTENT_TYPE,
  HEADER_BYTES,
  isGrpcProtoContentType,
  MessageError,
  parseGrpcTimeout,
  parseMetadata,
  readMessage,
  requestEncoding,
  type CallMetadata,
  type MessageProblem,
  type RequestEncoding,
} from './grpc-wire.js';

export { encodeGrpcMessage, parseGrpcTimeout } from './grpc-wire.js';

export interface TransportOptions extends ConnectionLimits {
  readonly maxReceiveBytes: number;
  readonly maxSendBytes: number;
  /** Without a grpc-timeout, the longest wait from a call's headers to the end of its body. */
  readonly bodyTimeoutMs: number;
  /** node:http2's per-connection memory cap (MB) for nghttp2's buffers. */
  readonly maxSessionMemoryMb: number;
  /** Told why the server closed a connection (for logs / metrics); optional. */
  readonly onConnectionClose?: (reason: CloseReason) => void;
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

const MESSAGE_PROBLEMS: Record<MessageProblem, [number, string]> = {
  framing: [status.INTERNAL, 'expected exactly one request message'],
  compressed_without_encoding: [status.INTERNAL, 'compressed flag set without a grpc-encoding'],
  too_large: [status.RESOURCE_EXHAUSTED, 'decompressed message larger than max'],
  corrupt: [status.INTERNAL, 'request message could not be decompressed'],
};
const noop = (): undefined => undefined;

// The same for every call (node:http2 copies what it is given): nothing allocated per answer for them.
const RESPONSE_HEADERS = Object.freeze({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-accept-encoding': ACCEPT_ENCODING });
// No date header (grpc-go's server sends none): one string and header field less per answer.
const RESPOND_OPTIONS = Object.freeze({ waitForTrailers: true, sendDate: false });
const TRAILERS_ONLY_OPTIONS = Object.freeze({ endStream: true, sendDate: false });
const OK_TRAILERS = Object.freeze({ 'grpc-status': '0' });
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

/** The stop signal of a call: ours carries one; a grpc-js call gets one from its 'cancelled' event. */
export function callSignal(call: { cancelled?: boolean; signal?: Stop; once(event: 'cancelled', listener: () => void): unknown }): Stop {
  if (call.signal) return call.signal;
  const stop = new Stop();
  const cancel = (): void => stop.abort(new UnavailableError('cancelled', 'the caller cancelled the call'));
  if (call.cancelled) cancel();
  else call.once('cancelled', cancel);
  return stop;
}

/**
 * One call, shaped like grpc-js's ServerUnaryCall / ServerWritableStream as far as the handlers use
 * them. Its 'cancelled' event (what grpc-js handlers such as the health service's Watch listen
 * to) comes from an emitter made on the first listener: our handlers read `signal`, and an
 * EventEmitter per call was garbage on every Check.
 */
export class Call {
  cancelled = false;
  private readonly stop = new Stop();
  private events: EventEmitter | undefined;

  constructor(
    readonly request: unknown,
    readonly metadata: CallMetadata,
    private readonly deadline: number,
    private readonly writeMessage: (value: unknown) => boolean,
    private readonly endStream: () => void,
  ) {}

  /** Stopped (reason: an UnavailableError, code `cancelled` or `deadline_exceeded`) when the call's work should stop. */
  get signal(): Stop {
    return this.stop;
  }

  getDeadline(): number {
    return this.deadline;
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    (this.events ??= new EventEmitter()).on(event, listener);
    return this;
  }

  once(event: string, listener: (...args: unknown[]) => void): this {
    (this.events ??= new EventEmitter()).once(event, listener);
    return this;
  }

  removeListener(event: string, listener: (...args: unknown[]) => void): this {
    this.events?.removeListener(event, listener);
    return this;
  }

  /** Server streaming: send one message. */
  write(value: unknown): boolean {
    return this.writeMessage(value);
  }

  /** Server streaming: end the call with OK. */
  end(): void {
    this.endStream();
  }

  /** Transport side: the call is over for the handler (reset or deadline). */
  abort(reason: UnavailableError): void {
    if (this.stop.aborted) return;
    this.cancelled = true;
    this.stop.abort(reason);
    this.events?.emit('cancelled', reason.code === 'deadline_exceeded' ? 'deadline' : 'cancelled');
  }
}

export class GrpcServer {
  private readonly methods = new Map<string, Method>();
  /** Every call's body timeout and deadline, on one timer. */
  private readonly deadlines = new Deadlines();
  private server: Http2Server | Http2SecureServer | undefined;
  private readonly connections = new Map<Http2Session, Connection>();

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
    const listen = parseHostPort(address);
    if (!listen) return Promise.reject(new Error(`${address} is not host:port`));
    const { host, port } = listen;
    const o = this.opts;
    const common = {
      settings: { maxConcurrentStreams: o.maxConcurrentStreams, maxHeaderListSize: 65536 },
      maxSessionMemory: o.maxSessionMemoryMb,
      // A TLS handshake or a non-h2 protocol gets no longer than the HTTP/2 preface.
      unknownProtocolTimeout: o.prefaceTimeoutMs,
    };
    const server = tls
      ? createSecureServer({
          ...common,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          minVersion: 'TLSv1.2',
          handshakeTimeout: o.prefaceTimeoutMs,
        })
      : createServer(common);
    this.server = server;
    server.on('session', (session) => this.track(session));
    // node:http2 passes the raw header list as a fourth argument (@types/node does not declare it).
    server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: readonly string[]) => this.onStream(stream, headers, rawHeaders));
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
    for (const s of this.connections.keys()) s.close();
  }

  /** Cuts every connection and call now. */
  forceShutdown(): void {
    this.server?.close();
    for (const s of this.connections.keys()) s.destroy();
    this.connections.clear();
  }

  private track(session: Http2Session): void {
    session.on('error', noop); // a broken connection ends its calls; nothing else to do
    this.connections.set(session, new Connection(session, this.opts, this.opts.onConnectionClose));
    session.once('close', () => this.connections.delete(session));
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: readonly string[]): void {
    stream.on('error', noop); // reset by the peer: the call is cancelled below
    const conn = stream.session ? this.connections.get(stream.session) : undefined;
    if (!conn) return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
    conn.noteStream(stream.id ?? 0);
    // As grpc-go: a request that is not gRPC is refused with HTTP 415 (and a grpc-status for gRPC clients).
    if (!isGrpcProtoContentType(headers['content-type'])) {
      return trailersOnly(stream, status.INTERNAL, `invalid gRPC request content-type ${JSON.stringify(String(headers['content-type']))}`, constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
    }
    if (headers[':method'] !== 'POST') return trailersOnly(stream, status.INTERNAL, 'gRPC requests must be POST', constants.HTTP_STATUS_METHOD_NOT_ALLOWED);
    const started = Date.now();
    const deadline = parseGrpcTimeout(headers['grpc-timeout'] as string | undefined, started);
    if (deadline === undefined) return trailersOnly(stream, status.INTERNAL, 'malformed grpc-timeout');
    const metadata = parseMetadata(rawHeaders);
    if (!metadata) return trailersOnly(stream, status.INTERNAL, 'malformed binary metadata');
    const method = this.methods.get(headers[':path'] ?? '');
    if (!method) return trailersOnly(stream, status.UNIMPLEMENTED, `The server does not implement the method ${headers[':path'] ?? ''}`);
    const encoding = requestEncoding(headers['grpc-encoding'] as string | undefined);
    if (!encoding) return trailersOnly(stream, status.UNIMPLEMENTED, `compression ${String(headers['grpc-encoding'])} is not supported`);
    // Calls in progress on this connection are bounded, a reset call counting until its handler stops.
    if (!conn.admit()) return void stream.close(constants.NGHTTP2_REFUSED_STREAM);
    new Exchange(this.opts, this.deadlines, conn, stream, method, metadata, encoding, started, deadline, performance.now()).start();
  }

}

/** A trailers-only answer; a request still being sent is then stopped with RST_STREAM NO_ERROR (RFC 9113 8.1). */
function trailersOnly(stream: ServerHttp2Stream, code: number, message: string, httpStatus = 200): void {
  if (stream.closed || stream.destroyed || stream.headersSent) return;
  stream.respond(
    {
      ':status': httpStatus,
      'content-type': GRPC_CONTENT_TYPE,
      'grpc-accept-encoding': ACCEPT_ENCODING,
      'grpc-status': String(code),
      'grpc-message': encodeGrpcMessage(message),
    },
    TRAILERS_ONLY_OPTIONS,
  );
  if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
}

/** One admitted call, from its headers to its answer (or its reset). */
class Exchange implements Expiring {
  expiresAt = Infinity;
  slot = -1;
  private answered = false;
  private closed = false;
  private handlerRunning = false;
  private released = false;
  private call: Call | undefined;
  /** Whether the queued expiry is the caller's deadline (else the body's timeout). */
  private timerIsDeadline: boolean;
  /** The deadline on the monotonic clock the queue runs on (Infinity: none). */
  private readonly deadlineMono: number;
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly opts: TransportOptions,
    private readonly deadlines: Deadlines,
    private readonly conn: Connection,
    private readonly stream: ServerHttp2Stream,
    private readonly method: Method,
    private readonly metadata: CallMetadata,
    private readonly encoding: RequestEncoding,
    started: number,
    /** ms since the epoch (what call.getDeadline() gives, as grpc-js does). */
    private readonly deadline: number,
    startedMono: number,
  ) {
    // One expiry per call: first for the body (the caller's deadline, or our body_timeout_ms if
    // sooner), then - only if that was not already the deadline - for the deadline. Queued on
    // the monotonic clock: a wall-clock step moves no call's expiry.
    this.deadlineMono = startedMono + (deadline - started);
    const bodyBy = Math.min(this.deadlineMono, startedMono + opts.bodyTimeoutMs);
    this.timerIsDeadline = bodyBy === this.deadlineMono;
    deadlines.set(this, bodyBy);
  }

  /** The queued expiry came: the body's timeout or the deadline. */
  expire(): void {
    this.expired(!this.timerIsDeadline);
  }

  start(): void {
    // Each of these comes once per stream; onClose removes them all (`once` would wrap each).
    const s = this.stream;
    s.on('close', this.closeListener);
    s.on('data', this.dataListener);
    s.on('end', this.endListener);
  }

  private readonly closeListener = (): void => this.onClose();
  private readonly dataListener = (chunk: Buffer): void => this.onData(chunk);
  private readonly endListener = (): void => {
    if (this.answered || this.closed) return;
    // Frames already read in this turn of the event loop may include this stream's RST_STREAM:
    // look once more before any handler work starts.
    setImmediate(bodyOf, this);
  };

  private open(): boolean {
    return !this.closed && !this.stream.closed && !this.stream.destroyed;
  }

  private onData(chunk: Buffer): void {
    if (this.answered) return;
    this.size += chunk.length;
    if (this.size > this.opts.maxReceiveBytes + HEADER_BYTES) {
      this.answer(status.RESOURCE_EXHAUSTED, `received message larger than max (${this.size} vs. ${this.opts.maxReceiveBytes})`);
      return;
    }
    this.chunks.push(chunk);
  }

  /** The request body is complete (called from setImmediate). */
  onBody(): void {
    if (this.answered || !this.open()) return;
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks.length = 0;
    const message = readMessage(body, this.encoding, this.opts.maxReceiveBytes);
    if (typeof message === 'string') return this.answer(...MESSAGE_PROBLEMS[message]);
    if (Buffer.isBuffer(message)) return this.dispatch(message);
    message.then(
      (m) => {
        if (!this.answered && this.open()) this.dispatch(m);
      },
      (err: unknown) => this.answer(...MESSAGE_PROBLEMS[err instanceof MessageError ? err.problem : 'corrupt']),
    );
  }

  private dispatch(payload: Buffer): void {
    let request: unknown;
    try {
      request = this.method.deserialize(payload);
    } catch {
      return this.answer(status.INTERNAL, 'request message could not be parsed');
    }
    // The body is in: from now on the expiry is the caller's deadline alone (none: none).
    if (!this.timerIsDeadline) {
      this.timerIsDeadline = true;
      this.deadlines.set(this, this.deadlineMono);
    }
    const call = new Call(request, this.metadata, this.deadline, (v) => this.write(v), () => this.finish(null));
    this.call = call;
    const run = (cb: Callback): void => {
      try {
        this.method.handler(call, cb);
      } catch {
        // A handler that throws fails its call, never the process (and never says why to the caller).
        this.handlerDone();
        this.finish({ code: status.INTERNAL, details: 'internal error' });
      }
    };
    if (this.method.responseStream) return run(noop);
    this.handlerRunning = true;
    run((err, response) => {
      this.handlerDone();
      if (err || this.answered || !this.open()) return this.finish(err);
      const framed = this.encode(response);
      if (!Buffer.isBuffer(framed)) return this.finish(framed);
      // Headers, message and end of stream in one go; the trailers follow.
      this.settle();
      this.sendHeaders();
      this.stream.on('wantTrailers', sendOkTrailers);
      this.stream.end(framed);
    });
  }

  private sendHeaders(): void {
    if (!this.stream.headersSent) {
      this.stream.respond(RESPONSE_HEADERS, RESPOND_OPTIONS);
    }
  }

  /** One response message, framed and within the size cap; or the error that ends the call. */
  private encode(value: unknown): Buffer | CallError {
    let body: Buffer;
    try {
      body = this.method.serialize(value);
    } catch {
      return { code: status.INTERNAL, details: 'response could not be serialized' };
    }
    return body.length > this.opts.maxSendBytes ? { code: status.RESOURCE_EXHAUSTED, details: 'response larger than the configured max' } : frame(body);
  }

  private write(value: unknown): boolean {
    if (this.answered || !this.open()) return false;
    const framed = this.encode(value);
    if (!Buffer.isBuffer(framed)) {
      this.finish(framed);
      return false;
    }
    this.sendHeaders();
    return this.stream.write(framed);
  }

  /** Ends the call with a status (OK when err is null), in trailers after anything already sent. */
  private finish(err: CallError | null): void {
    if (this.answered || !this.open()) return;
    const code = err ? (err.code ?? status.UNKNOWN) : status.OK;
    const message = err ? (err.details ?? err.message ?? '') : '';
    if (!this.stream.headersSent && err) return this.answer(code, message);
    this.settle();
    this.sendHeaders();
    this.stream.once('wantTrailers', () => this.stream.sendTrailers({ 'grpc-status': String(code), ...(message ? { 'grpc-message': encodeGrpcMessage(message) } : {}) }));
    this.stream.end();
  }

  /** An error status: trailers-only before anything was sent, else in the trailers. */
  private answer(code: number, message: string): void {
    if (this.answered || !this.open()) return;
    if (this.stream.headersSent) return this.finish({ code, details: message });
    this.settle();
    trailersOnly(this.stream, code, message);
  }

  /** The answer is decided: no expiry any more; the connection saw data from us. */
  private settle(): void {
    this.answered = true;
    this.deadlines.remove(this);
    this.conn.answered();
  }

  /** The body did not come in time, or the deadline passed: DEADLINE_EXCEEDED, and the handler is told to stop. */
  private expired(bodyTimeout: boolean): void {
    if (this.answered || !this.open()) return;
    this.answer(status.DEADLINE_EXCEEDED, bodyTimeout ? 'request body not received in time' : 'deadline exceeded');
    this.call?.abort(new UnavailableError('deadline_exceeded', 'the call\'s deadline passed'));
  }

  private onClose(): void {
    this.closed = true;
    this.deadlines.remove(this);
    // node:http2 may keep a closed stream reachable until the next mark-compact (its session's
    // stream Map, once old, still points to it for scavenges): it must reach nothing of the call.
    this.stream.removeListener('close', this.closeListener);
    this.stream.removeListener('data', this.dataListener);
    this.stream.removeListener('end', this.endListener);
    this.stream.removeAllListeners('wantTrailers');
    if (!this.answered) {
      // Reset by the client (or the connection died) before our answer: the call is cancelled.
      this.answered = true;
      if (this.stream.rstCode !== constants.NGHTTP2_NO_ERROR) this.conn.reset();
      this.call?.abort(new UnavailableError('cancelled', 'the caller cancelled the call'));
    }
    this.release();
  }

  private handlerDone(): void {
    this.handlerRunning = false;
    this.release();
  }

  /** The call's slot on its connection is free once the stream is closed and no handler runs for it. */
  private release(): void {
    if (this.released || !this.closed || this.handlerRunning) return;
    this.released = true;
    this.conn.finished();
  }
}

function bodyOf(exchange: Exchange): void {
  exchange.onBody();
}
