// The transport against the gRPC-over-HTTP/2 spec, as grpc-go's and grpc-js's servers behave:
// content types, compression, deadlines from the headers, cancellation, metadata. Raw HTTP/2
// where a conforming client cannot reach the case; grpc-js's client where it can.
import { constants } from 'node:http2';
import { gzipSync } from 'node:zlib';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { serverOptions } from '../../../src/server/grpc.js';
import { GrpcServer, type Call, type TransportOptions } from '../../../src/server/transport.js';
import { grpcFrame, rawCall, rawRequest, session } from '../../helpers/h2.js';

const root = protobuf.parse(`syntax = "proto3"; package t;
  message Msg { string text = 1; }
  service Svc { rpc Echo(Msg) returns (Msg); }`).root;
const Msg = root.lookupType('t.Msg');
const pkg = loadPackageDefinition(fromJSON(root.toJSON())) as unknown as {
  t: { Svc: { service: Parameters<GrpcServer['addService']>[0] } & (new (addr: string, c: ReturnType<typeof credentials.createInsecure>, o?: object) => Client) };
};
interface Client {
  Echo(req: { text: string }, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, res?: { text: string }) => void): void;
  close(): void;
}
type Cb = (e: unknown, r?: unknown) => void;

const msg = (text: string): Buffer => Buffer.from(Msg.encode({ text }).finish());
const decode = (data: Buffer): string => (Msg.decode(data.subarray(5)) as unknown as { text: string }).text;
const OPTS: TransportOptions = { ...serverOptions(parseConfig('t.yaml', '{}').server), maxReceiveBytes: 1024, maxSendBytes: 1024, maxConcurrentStreams: 10 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: GrpcServer | undefined;
afterEach(() => server?.forceShutdown());

async function start(echo: (call: Call, cb: Cb) => void, opts: Partial<TransportOptions> = {}): Promise<string> {
  server = new GrpcServer({ ...OPTS, ...opts });
  server.addService(pkg.t.Svc.service, { Echo: echo });
  return `127.0.0.1:${await server.bind('127.0.0.1:0', undefined)}`;
}
const echoText = (call: Call, cb: Cb): void => cb(null, { text: `echo ${(call.request as { text: string }).text}` });

describe('content-type (gRPC over HTTP/2 spec, grpc-go)', () => {
  it('accepts application/grpc and application/grpc+proto, with parameters, and without te: trailers', async () => {
    const address = await start(echoText);
    for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8', 'application/grpc+proto; x=y', 'Application/GRPC']) {
      const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('hi')), { 'content-type': ct });
      expect(a.grpcStatus, ct).toBe('0');
      expect(decode(a.data)).toBe('echo hi');
    }
    // grpc-go's server never reads te; neither do we.
    const noTe = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('te')), { te: undefined });
    expect(noTe.grpcStatus).toBe('0');
  });

  it('refuses other codecs and look-alike media types with HTTP 415, never decoding them', async () => {
    let calls = 0;
    const address = await start((call, cb) => {
      calls += 1;
      echoText(call, cb);
    });
    for (const ct of ['application/grpc+json', 'application/grpcXYZ', 'application/grpc-web+proto', 'application/grpc-web', 'application/grpc-web-text', 'application/json']) {
      const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('x')), { 'content-type': ct });
      expect(a.headers[':status'], ct).toBe(constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
    }
    expect(calls).toBe(0);
  });
});

describe('compression', () => {
  it('decodes gzip requests (grpc-js with gzip as its default) and advertises grpc-accept-encoding', async () => {
    const address = await start(echoText);
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('zipped'), true), { 'grpc-encoding': 'gzip' });
    expect(a.grpcStatus).toBe('0');
    expect(decode(a.data)).toBe('echo zipped');
    expect(a.headers['grpc-accept-encoding']).toBe('identity,gzip');
    // An uncompressed message on a gzip call is fine (the flag decides per message).
    expect((await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('plain')), { 'grpc-encoding': 'gzip' })).grpcStatus).toBe('0');
    const client = new pkg.t.Svc(address, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    const res = await new Promise<{ text: string }>((resolve, reject) => client.Echo({ text: 'js' }, new Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r!))));
    expect(res.text).toBe('echo js');
    client.close();
  });

  it('answers an unknown encoding UNIMPLEMENTED with grpc-accept-encoding, a compressed flag without encoding INTERNAL', async () => {
    const address = await start(echoText);
    const br = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('x')), { 'grpc-encoding': 'br' });
    expect(br.grpcStatus).toBe(String(status.UNIMPLEMENTED));
    expect(br.headers['grpc-accept-encoding']).toBe('identity,gzip');
    for (const enc of [undefined, 'identity']) {
      const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('x'), true), enc ? { 'grpc-encoding': enc } : {});
      expect(a.grpcStatus, String(enc)).toBe(String(status.INTERNAL));
    }
    const corrupt = await rawCall(address, '/t.Svc/Echo', grpcFrame(Buffer.from('not gzip'), true, true), { 'grpc-encoding': 'gzip' });
    expect(corrupt.grpcStatus).toBe(String(status.INTERNAL));
  });

  it('caps the decompressed size: a small gzip bomb is RESOURCE_EXHAUSTED', async () => {
    const address = await start(echoText);
    // 512 KiB of zeros in under 1 KiB on the wire: within the receive cap until inflated.
    const bomb = gzipSync(Buffer.alloc(512 * 1024));
    expect(bomb.length).toBeLessThan(OPTS.maxReceiveBytes);
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(bomb, true, true), { 'grpc-encoding': 'gzip' });
    expect(a.grpcStatus).toBe(String(status.RESOURCE_EXHAUSTED));
  });
});

describe('deadlines', () => {
  it('answers DEADLINE_EXCEEDED at the caller\'s deadline and aborts the handler', async () => {
    let reason: unknown;
    const address = await start((call) => {
      call.signal.onAbort(() => {
        reason = call.signal.reason;
      });
    });
    const started = Date.now();
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('slow')), { 'grpc-timeout': '200m' });
    expect(a.grpcStatus).toBe(String(status.DEADLINE_EXCEEDED));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(reason).toMatchObject({ code: 'deadline_exceeded' });
  });

  it('counts the deadline from the headers: a body that never comes is answered in time, with or without grpc-timeout', async () => {
    let calls = 0;
    const address = await start(() => (calls += 1), { bodyTimeoutMs: 300 });
    const started = Date.now();
    const s = session(address);
    const [withTimeout, without] = await Promise.all([rawRequest(s, '/t.Svc/Echo', undefined, { 'grpc-timeout': '150m' }), rawRequest(s, '/t.Svc/Echo', undefined)]);
    s.close();
    expect(withTimeout.grpcStatus).toBe(String(status.DEADLINE_EXCEEDED));
    expect(without.grpcStatus).toBe(String(status.DEADLINE_EXCEEDED));
    expect(Date.now() - started).toBeLessThan(4000);
    expect(calls).toBe(0);
  });

  it('keeps a deadline further off than setTimeout can wait (grpc-timeout 600H): no early DEADLINE_EXCEEDED, no busy timer', async () => {
    const address = await start(echoText);
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('far')), { 'grpc-timeout': '600H' });
    expect(a.grpcStatus).toBe(String(status.OK));
    // A handler still working under the same kind of deadline: not stopped, and the one timer
    // waits (setTimeout takes more than 2^31 - 1 ms as 1 ms: it would fire a thousand times a second).
    let aborted = false;
    // (A short body timeout: its expiry comes first, and re-arms the timer for the deadline.)
    const slow = await start((call) => call.signal.onAbort(() => (aborted = true)), { bodyTimeoutMs: 20 });
    const s = session(slow);
    const pending = rawRequest(s, '/t.Svc/Echo', grpcFrame(msg('far')), { 'grpc-timeout': '99999999H' });
    await new Promise((r) => setTimeout(r, 50));
    const timers = vi.spyOn(globalThis, 'setTimeout');
    await new Promise((r) => setTimeout(r, 100));
    const armed = timers.mock.calls.length;
    timers.mockRestore();
    expect(aborted).toBe(false);
    expect(armed).toBeLessThan(10);
    s.destroy();
    await pending.catch(() => undefined);
  });

  it('refuses a malformed grpc-timeout with INTERNAL (as grpc-go and grpc-js)', async () => {
    const address = await start(echoText);
    for (const t of ['12x', '123456789S', '-1S', 'S', '1.5S']) {
      expect((await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('x')), { 'grpc-timeout': t })).grpcStatus, t).toBe(String(status.INTERNAL));
    }
  });
});

describe('cancellation', () => {
  it('aborts the handler\'s signal when the client resets the stream', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let reason: unknown;
    const aborted = new Promise<void>((resolve) => {
      void start((call) => {
        call.signal.onAbort(() => {
          reason = call.signal.reason;
          resolve();
        });
        started();
      }).then((address) => {
        const s = session(address);
        const req = s.request({ ':method': 'POST', ':path': '/t.Svc/Echo', 'content-type': 'application/grpc', te: 'trailers' });
        req.on('error', () => undefined);
        req.end(grpcFrame(msg('x')));
        void running.then(() => req.close(constants.NGHTTP2_CANCEL));
      });
    });
    await aborted;
    expect(reason).toMatchObject({ code: 'cancelled' });
  });

  it('never starts a handler for a stream reset in the same burst as its request', async () => {
    let calls = 0;
    const address = await start((call, cb) => {
      calls += 1;
      echoText(call, cb);
    });
    const s = session(address);
    for (let i = 0; i < 5; i++) {
      const req = s.request({ ':method': 'POST', ':path': '/t.Svc/Echo', 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', () => undefined);
      req.end(grpcFrame(msg('x')));
      req.close(constants.NGHTTP2_CANCEL);
    }
    // A later call on the same connection is served: the resets were all seen first.
    expect((await rawRequest(s, '/t.Svc/Echo', grpcFrame(msg('ok')))).grpcStatus).toBe('0');
    await sleep(50);
    s.close();
    expect(calls).toBe(1);
  });
});

describe('metadata', () => {
  it('keeps repeated keys and decodes -bin values to Buffers', async () => {
    let seen: Call | undefined;
    const address = await start((call, cb) => {
      seen = call;
      echoText(call, cb);
    });
    const id = Buffer.from([0, 1, 2, 250, 255]);
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('m')), {
      'x-multi': ['one', 'two'],
      'x-id-bin': [id.toString('base64'), Buffer.from('b').toString('base64').replace(/=+$/, '')],
    });
    expect(a.grpcStatus).toBe('0');
    expect(seen!.metadata.get('x-multi')).toEqual(['one', 'two']);
    expect(seen!.metadata.getMap()['x-multi']).toBe('one, two');
    expect(seen!.metadata.get('x-id-bin')).toEqual([id, Buffer.from('b')]);
    expect(seen!.metadata.getMap()['x-id-bin']).toEqual(id);
  });

  it('refuses malformed -bin metadata with INTERNAL (grpc-go)', async () => {
    const address = await start(echoText);
    expect((await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('m')), { 'x-id-bin': 'not base64!' })).grpcStatus).toBe(String(status.INTERNAL));
  });

  it('sends any status message, lone surrogates included, percent-encoded', async () => {
    const address = await start((_c, cb) => cb({ code: status.PERMISSION_DENIED, details: 'bad \uD800 and \uDC00 ü 100%' }));
    const a = await rawCall(address, '/t.Svc/Echo', grpcFrame(msg('x')));
    expect(a.grpcStatus).toBe(String(status.PERMISSION_DENIED));
    expect(decodeURIComponent(String(a.headers['grpc-message']))).toBe('bad \uFFFD and \uFFFD ü 100%');
  });
});
