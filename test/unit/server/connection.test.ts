// Connection limits of the gRPC listener, driven by raw HTTP/2 and raw TCP peers on loopback:
// preface timeout, max age + grace, idle close, ping policy, calls in progress, rapid resets.
import { connect as tcpConnect } from 'node:net';
import { constants, type ClientHttp2Session } from 'node:http2';
import { parseConfig } from '../../../src/config/loader.js';
import { serverOptions } from '../../../src/server/grpc.js';
import { GrpcServer, type Call, type TransportOptions } from '../../../src/server/transport.js';
import { loadPackageDefinition, type credentials } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcFrame, rawRequest, session } from '../../helpers/h2.js';

const root = protobuf.parse(`syntax = "proto3"; package t;
  message Msg { string text = 1; }
  service Svc { rpc Echo(Msg) returns (Msg); }`).root;
const pkg = loadPackageDefinition(fromJSON(root.toJSON())) as unknown as {
  t: { Svc: { service: Parameters<GrpcServer['addService']>[0] } & (new (addr: string, c: ReturnType<typeof credentials.createInsecure>) => unknown) };
};
const OPTS: TransportOptions = { ...serverOptions(parseConfig('t.yaml', '{}').server), maxReceiveBytes: 1024, maxSendBytes: 1024 };
const EMPTY = grpcFrame(Buffer.alloc(0));
type Cb = (e: unknown, r?: unknown) => void;

let server: GrpcServer | undefined;
afterEach(() => server?.forceShutdown());

async function start(echo: (call: Call, cb: Cb) => void, opts: Partial<TransportOptions>): Promise<string> {
  server = new GrpcServer({ ...OPTS, ...opts });
  server.addService(pkg.t.Svc.service, { Echo: echo });
  return `127.0.0.1:${await server.bind('127.0.0.1:0', undefined)}`;
}
const ok = (_c: Call, cb: Cb): void => cb(null, {});

/** Resolves with the GOAWAY code (undefined if none came) once the client session closes. */
function closed(s: ClientHttp2Session): Promise<{ goaway: number | undefined; data: string }> {
  let goaway: number | undefined;
  let data = '';
  s.on('goaway', (code: number, _last: number, opaque?: Buffer) => {
    goaway = code;
    data = opaque?.toString() ?? '';
  });
  return new Promise((resolve) => s.once('close', () => resolve({ goaway, data })));
}

describe('connection limits', () => {
  it('closes a connection that never sends the HTTP/2 preface within the configured timeout', async () => {
    const address = await start(ok, { prefaceTimeoutMs: 300 });
    const [host, port] = address.split(':');
    const started = Date.now();
    const sock = tcpConnect(Number(port), host);
    sock.on('error', () => undefined);
    sock.resume(); // read, so the server's close is seen
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5000);
  });

  it('sends GOAWAY at max age, lets the call in flight finish within the grace, then closes', async () => {
    let release: (() => void) | undefined;
    const address = await start((_c, cb) => (release = () => cb(null, {})), { maxConnectionAgeMs: 400, maxConnectionAgeGraceMs: 1500 });
    const s = session(address);
    const done = closed(s);
    const inflight = rawRequest(s, '/t.Svc/Echo', EMPTY);
    const goaway = new Promise<void>((r) => s.once('goaway', () => r()));
    const started = Date.now();
    await goaway;
    expect(Date.now() - started).toBeLessThan(3000);
    release!();
    expect((await inflight).grpcStatus).toBe('0');
    expect((await done).goaway).toBe(constants.NGHTTP2_NO_ERROR);
  });

  it('cuts a connection whose call outlives the grace period', async () => {
    const address = await start(() => undefined, { maxConnectionAgeMs: 200, maxConnectionAgeGraceMs: 300 });
    const s = session(address);
    const done = closed(s);
    const started = Date.now();
    void rawRequest(s, '/t.Svc/Echo', EMPTY);
    await done;
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('closes an idle connection', async () => {
    const address = await start(ok, { maxConnectionIdleMs: 300 });
    const s = session(address);
    const done = closed(s);
    expect((await rawRequest(s, '/t.Svc/Echo', EMPTY)).grpcStatus).toBe('0');
    const started = Date.now();
    expect((await done).goaway).toBe(constants.NGHTTP2_NO_ERROR);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('answers too-frequent client pings with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc-go\'s policy)', async () => {
    const address = await start(ok, { keepaliveMinPingIntervalMs: 1000 });
    const s = session(address);
    const done = closed(s);
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (let i = 0; i < 5; i++) s.ping(() => undefined);
    expect(await done).toEqual({ goaway: constants.NGHTTP2_ENHANCE_YOUR_CALM, data: 'too_many_pings' });
  });

  it('tolerates pings at the allowed interval', async () => {
    const address = await start(ok, { keepaliveMinPingIntervalMs: 50 });
    const s = session(address);
    let goaway = false;
    s.on('goaway', () => (goaway = true));
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((r) => s.ping(() => r()));
      await new Promise((r) => setTimeout(r, 70));
    }
    expect((await rawRequest(s, '/t.Svc/Echo', EMPTY)).grpcStatus).toBe('0');
    expect(goaway).toBe(false);
    s.close();
  });

  it('counts a reset call against the connection until its handler stops: further calls are refused', async () => {
    const pending: Cb[] = [];
    let hold = true;
    const address = await start((_c, cb) => (hold ? pending.push(cb) : cb(null, {})), { maxConcurrentStreams: 2 });
    const s = session(address);
    const reqs = [0, 1].map(() => {
      const req = s.request({ ':method': 'POST', ':path': '/t.Svc/Echo', 'content-type': 'application/grpc' });
      req.on('error', () => undefined);
      req.end(EMPTY);
      return req;
    });
    while (pending.length < 2) await new Promise((r) => setTimeout(r, 10));
    // Reset both: the streams are gone, their handlers still run.
    for (const req of reqs) req.close(constants.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 30));
    const refused = await rawRequest(s, '/t.Svc/Echo', EMPTY);
    expect(refused.rstCode).toBe(constants.NGHTTP2_REFUSED_STREAM);
    hold = false;
    for (const cb of pending.splice(0)) cb(null, {});
    await new Promise((r) => setTimeout(r, 20));
    expect((await rawRequest(s, '/t.Svc/Echo', EMPTY)).grpcStatus).toBe('0');
    s.close();
  });

  it('closes a connection that resets streams faster than allowed (rapid reset), with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const address = await start(() => undefined, { maxResetsPerSecond: 20 });
    const s = session(address);
    const done = closed(s);
    await new Promise<void>((r) => s.once('connect', () => r()));
    for (let i = 0; i < 100 && !s.destroyed && !s.closed; i++) {
      const req = s.request({ ':method': 'POST', ':path': '/t.Svc/Echo', 'content-type': 'application/grpc' });
      req.on('error', () => undefined);
      req.end(EMPTY);
      req.close(constants.NGHTTP2_CANCEL);
      await new Promise((r) => setImmediate(r));
    }
    const { goaway, data } = await done;
    expect(goaway).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(data).toBe('rapid_reset');
  });
});
