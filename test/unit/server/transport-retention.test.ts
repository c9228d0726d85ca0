// A closed call's objects die young. node:http2 keeps a session's streams in a Map; once that Map
// has been through a mark-compact, a stream deleted from it stays reachable for scavenges until the
// next mark-compact, so everything a closed stream still reaches is promoted to the old generation.
// The transport's listeners on the stream reached the call's Exchange - the decoded request, its
// metadata, the response - so each call promoted its whole state under load (a mark-compact every
// few seconds: bench/NOTES.md "What grows the old generation"). It removes them when the stream closes.
import { spawn, type ChildProcess } from 'node:child_process';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { afterEach, describe, expect, it } from 'vitest';
import * as protobuf from 'protobufjs';
import { parseConfig } from '../../../src/config/loader.js';
import { serverOptions } from '../../../src/server/grpc.js';
import { GrpcServer, type TransportOptions } from '../../../src/server/transport.js';
import { promotedDuring } from '../../helpers/gc.js';

const root = protobuf.parse(`syntax = "proto3"; package t;
  message Msg { string text = 1; }
  service Svc { rpc Echo(Msg) returns (Msg); }`).root;
const pkg = loadPackageDefinition(fromJSON(root.toJSON())) as unknown as { t: { Svc: { service: Parameters<GrpcServer['addService']>[0] } } };
const Msg = root.lookupType('t.Msg');

const OPTS: TransportOptions = { ...serverOptions(parseConfig('t.yaml', '{}').server), maxConcurrentStreams: 100 };
let server: GrpcServer | undefined;
let client: ChildProcess | undefined;
afterEach(() => {
  client?.kill();
  server?.forceShutdown();
});

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (o?: { type: 'major' | 'minor' }) => void;

// The client runs in a process of its own: its streams must not count in this heap.
const CLIENT = `
const { connect } = require('node:http2');
const s = connect(process.argv[1]);
const body = Buffer.from(process.argv[2], 'base64');
const call = () => new Promise((resolve, reject) => {
  const req = s.request({ ':method': 'POST', ':path': '/t.Svc/Echo', 'content-type': 'application/grpc', te: 'trailers' });
  req.on('data', () => undefined);
  req.on('close', resolve);
  req.on('error', reject);
  req.end(body);
});
process.on('message', async (n) => {
  for (let i = 0; i < n; i += 32) await Promise.all(Array.from({ length: 32 }, call));
  process.send(n);
});
`;

function framed(text: string): Buffer {
  const body = Buffer.from(Msg.encode({ text }).finish());
  const out = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
  out.writeUInt32BE(body.length, 1);
  return out;
}

/** Runs `n` calls (32 at a time) from the client process on its one connection. */
function calls(client: ChildProcess, n: number): Promise<void> {
  return new Promise((resolve) => {
    client.once('message', () => resolve());
    client.send(n);
  });
}

/** Old-space bytes gained in scavenges per call. */
async function promotedPerCall(client: ChildProcess, n: number): Promise<number> {
  const promoted = await promotedDuring(async () => {
    for (let i = 0; i < n; i += 256) {
      await calls(client, 256);
      gc({ type: 'minor' });
    }
    gc({ type: 'minor' });
  });
  return promoted / n;
}

describe('a closed call on a long-lived connection', () => {
  it('leaves its request, metadata and response to the young generation', async () => {
    server = new GrpcServer(OPTS);
    server.addService(pkg.t.Svc.service, {
      // The answer holds on to the request, as a Check's decision does.
      Echo: (c: { request: { text: string } }, cb: (e: null, r: unknown) => void) => cb(null, { text: c.request.text.slice(0, 64), kept: [c.request, new Array(64).fill(c.request.text)] }),
    });
    const port = await server.bind('127.0.0.1:0', undefined);
    client = spawn(process.execPath, ['-e', CLIENT, `http://127.0.0.1:${port}`, framed(`request ${'x'.repeat(2000)}`).toString('base64')], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    // The connection's stream Map grows, then ages into the old generation.
    await calls(client, 256);
    gc({ type: 'major' });
    gc({ type: 'major' });
    const perCall = await promotedPerCall(client, 2048);
    // About 1 KB remains: node:http2's own closed stream. With the transport's listeners left on
    // it, each call promoted about 3.2 KB.
    expect(perCall).toBeLessThan(2000);
  });
});
