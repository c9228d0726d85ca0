// The HTTP/2 gRPC transport on its own: framing, errors, deadlines, cancellation, shutdown - driven
// by grpc-js's client and by raw HTTP/2 where a well-behaved client cannot reach a case.
import { connect, constants } from 'node:http2';
import { credentials, loadPackageDefinition, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import * as protobuf from 'protobufjs';
import { parseConfig } from '../../../src/config/loader.js';
import { serverOptions } from '../../../src/server/grpc.js';
import type { Call, TransportOptions } from '../../../src/server/transport.js';
import { encodeGrpcMessage, GrpcServer, parseGrpcTimeout } from '../../../src/server/transport.js';

// A tiny service: Echo (unary) and Ticks (server streaming).
const root = protobuf.parse(`syntax = "proto3"; package t;
  message Msg { string text = 1; }
  service Svc { rpc Echo(Msg) returns (Msg); rpc Ticks(Msg) returns (stream Msg); }`).root;
const pkg = loadPackageDefinition(fromJSON(root.toJSON())) as unknown as {
  t: { Svc: { service: Parameters<GrpcServer['addService']>[0] } & (new (addr: string, c: ReturnType<typeof credentials.createInsecure>) => Client) };
};
interface Client {
  Echo(req: { text: string }, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, res?: { text: string }) => void): { cancel(): void };
  Ticks(req: { text: string }): NodeJS.EventEmitter & { cancel(): void };
  close(): void;
}

const OPTS: TransportOptions = { ...serverOptions(parseConfig('t.yaml', '{}').server), maxReceiveBytes: 1024, maxSendBytes: 1024, maxConcurrentStreams: 10 };
let server: GrpcServer | undefined;
afterEach(() => server?.forceShutdown());

async function start(impl: Record<string, unknown>): Promise<{ address: string; client: Client }> {
  server = new GrpcServer(OPTS);
  server.addService(pkg.t.Svc.service, impl);
  const port = await server.bind('127.0.0.1:0', undefined);
  const address = `127.0.0.1:${port}`;
  return { address, client: new pkg.t.Svc(address, credentials.createInsecure()) };
}

const echo = (client: Client, text: string, md = new Metadata(), deadline?: number): Promise<{ text: string }> =>
  new Promise((resolve, reject) => client.Echo({ text }, md, deadline ? { deadline } : {}, (err, res) => (err ? reject(err) : resolve(res!))));

describe('gRPC transport', () => {
  it('answers unary calls with metadata and the caller\'s deadline visible to the handler', async () => {
    let seen: { meta: Record<string, unknown>; deadline: number } | undefined;
    const { client } = await start({
      Echo: (call: Call, cb: (e: null, r: unknown) => void) => {
        seen = { meta: call.metadata.getMap(), deadline: call.getDeadline() };
        cb(null, { text: `echo ${(call.request as { text: string }).text}` });
      },
    });
    const md = new Metadata();
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const before = Date.now();
    expect(await echo(client, 'hi', md, before + 5000)).toEqual({ text: 'echo hi' });
    expect(seen?.meta.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(seen?.meta['grpc-timeout']).toBeUndefined();
    expect(seen!.deadline).toBeGreaterThan(before + 4000);
    expect(seen!.deadline).toBeLessThanOrEqual(before + 5100);
    client.close();
  });

  it('passes a handler\'s error code and an encoded message; a message over the cap is RESOURCE_EXHAUSTED; unknown methods UNIMPLEMENTED', async () => {
    const { client, address } = await start({ Echo: (_c: Call, cb: (e: unknown) => void) => cb({ code: status.PERMISSION_DENIED, details: 'nein: ü 100%' }) });
    await expect(echo(client, 'x')).rejects.toMatchObject({ code: status.PERMISSION_DENIED, details: 'nein: ü 100%' });
    await expect(echo(client, 'x'.repeat(2000))).rejects.toMatchObject({ code: status.RESOURCE_EXHAUSTED });
    const raw = await rawCall(address, '/t.Svc/Nope', Buffer.from([0, 0, 0, 0, 0]));
    expect(raw.headers['grpc-status']).toBe(String(status.UNIMPLEMENTED));
    client.close();
  });

  it('fails a call whose handler throws with INTERNAL and a generic message, and keeps serving', async () => {
    let calls = 0;
    const { client } = await start({
      Echo: (_c: Call, cb: (e: null, r: unknown) => void) => {
        if (calls++ === 0) throw new Error('secret detail');
        cb(null, { text: 'fine' });
      },
    });
    await expect(echo(client, 'x')).rejects.toMatchObject({ code: status.INTERNAL, details: 'internal error' });
    expect(await echo(client, 'y')).toEqual({ text: 'fine' });
    client.close();
  });

  it('refuses a compressed flag without an encoding, truncated frames and non-gRPC requests', async () => {
    const { address } = await start({ Echo: (_c: Call, cb: (e: null, r: unknown) => void) => cb(null, { text: '' }) });
    expect((await rawCall(address, '/t.Svc/Echo', Buffer.from([1, 0, 0, 0, 0]))).headers['grpc-status']).toBe(String(status.INTERNAL));
    expect((await rawCall(address, '/t.Svc/Echo', Buffer.from([0, 0, 0, 0, 9, 1]))).headers['grpc-status']).toBe(String(status.INTERNAL));
    expect((await rawCall(address, '/t.Svc/Echo', Buffer.alloc(0), 'application/json')).headers[':status']).toBe(constants.HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
    expect((await rawCall(address, '/t.Svc/Echo', Buffer.from([0, 0, 0, 0, 0]), 'application/grpc', 'br')).headers['grpc-status']).toBe(String(status.UNIMPLEMENTED));
  });

  it('streams to the caller and tells the handler when the caller cancels', async () => {
    let cancelled: Promise<void> | undefined;
    const { client } = await start({
      Ticks: (call: Call) => {
        cancelled = new Promise((r) => call.once('cancelled', () => r()));
        call.write({ text: 'one' });
        call.write({ text: 'two' });
      },
    });
    const stream = client.Ticks({ text: '' });
    const got: string[] = [];
    await new Promise<void>((resolve) =>
      stream.on('data', (m: { text: string }) => {
        got.push(m.text);
        if (got.length === 2) resolve();
      }),
    );
    stream.on('error', () => undefined);
    stream.cancel();
    await cancelled;
    expect(got).toEqual(['one', 'two']);
    client.close();
  });

  it('shuts down gracefully: calls in flight finish, then the listener is gone', async () => {
    let release: (() => void) | undefined;
    const { client } = await start({
      Echo: (call: Call, cb: (e: null, r: unknown) => void) => {
        release = () => cb(null, { text: (call.request as { text: string }).text });
      },
    });
    const pending = echo(client, 'late');
    await new Promise((r) => setTimeout(r, 100));
    const closed = new Promise<void>((r) => server!.tryShutdown(r));
    release!();
    expect(await pending).toEqual({ text: 'late' });
    client.close();
    await closed;
  });

  it('parses grpc-timeout and percent-encodes grpc-message', () => {
    expect(parseGrpcTimeout('100m', 1000)).toBe(1100);
    expect(parseGrpcTimeout('2S', 0)).toBe(2000);
    expect(parseGrpcTimeout('1H', 0)).toBe(3600000);
    expect(parseGrpcTimeout(undefined)).toBe(Infinity);
    expect(parseGrpcTimeout('12x')).toBeUndefined();
    expect(encodeGrpcMessage('a b%c\nü')).toBe('a b%25c%0A%C3%BC');
  });
});

/** One request over raw HTTP/2; resolves with the response (or trailers-only) headers. */
function rawCall(address: string, path: string, body: Buffer, contentType = 'application/grpc', encoding?: string): Promise<{ headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://${address}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers', ...(encoding ? { 'grpc-encoding': encoding } : {}) });
    req.on('response', (headers) => {
      req.on('data', () => undefined);
      req.on('end', () => session.close());
      resolve({ headers: headers });
    });
    req.on('error', reject);
    req.end(body);
  });
}
