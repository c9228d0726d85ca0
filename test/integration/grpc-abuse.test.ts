// The gRPC port under abuse, on the real service (in-process) with raw node:http2 peers on
// loopback: body-less streams, a missing preface, a rapid-reset flood beside a legitimate client,
// connection age, and calls reset mid-way (audit "cancelled", no rate-limit tokens spent).
// Every loop is bounded in count and time.
import { connect as tcpConnect } from 'node:net';
import { constants, type ClientHttp2Session } from 'node:http2';
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { envoyProtos } from '../../src/envoy/protos.js';
import type { CheckRequest } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { grpcFrame, rawRequest, session } from '../helpers/h2.js';
import { authzClient, rlsClient } from '../helpers/grpc.js';
import { loopbackServer, sendJson } from '../helpers/http.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const CHECK = '/envoy.service.auth.v3.Authorization/Check';
const RLS = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';
const SLOW_ISSUER = 'https://slow.test.invalid';
const MB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const protos = (): ReturnType<typeof envoyProtos>['envoy']['service'] => envoyProtos().envoy.service;
const checkBody = (token: string): Buffer =>
  grpcFrame(protos().auth.v3.Authorization.service.Check.requestSerialize(checkRequest({ headers: { authorization: `Bearer ${token}` } }) as CheckRequest));
const rlsBody = (key: string): Buffer =>
  grpcFrame(protos().ratelimit.v3.RateLimitService.service.ShouldRateLimit.requestSerialize({ domain: 'abuse', descriptors: [{ entries: [{ key, value: 'v' }] }] }));

/** A request sent whole and reset at once: HEADERS, DATA (END_STREAM), RST_STREAM(CANCEL). */
function sendAndReset(s: ClientHttp2Session, path: string, body: Buffer): void {
  const req = s.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => undefined);
  req.end(body);
  req.close(constants.NGHTTP2_CANCEL);
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

// The rapid-reset attacker: a process of its own, so the server's event loop is measured, not the
// attacker's. It stops at `total` streams or after `ms`, whichever comes first.
const FLOOD = `
const http2 = require('node:http2');
const { address, body, connections, perConnection, total, ms } = JSON.parse(process.argv[1]);
const until = Date.now() + ms;
let sent = 0, sessions = 0, goaways = 0;
function run() {
  if (sent >= total || Date.now() > until) return Promise.resolve();
  return new Promise((resolve) => {
    sessions++;
    const s = http2.connect('http://' + address);
    s.on('error', () => undefined);
    s.on('goaway', () => goaways++);
    s.once('close', () => resolve(run()));
    let n = 0;
    const burst = () => {
      if (s.destroyed || s.closed) return;
      for (let i = 0; i < 5 && n < perConnection && sent < total && Date.now() < until; i++, n++, sent++) {
        try {
          const req = s.request({ ':method': 'POST', ':path': '${CHECK}', 'content-type': 'application/grpc', te: 'trailers' });
          req.on('error', () => undefined);
          req.end(Buffer.from(body));
          req.close(http2.constants.NGHTTP2_CANCEL);
        } catch { return s.destroy(); }
      }
      if (n < perConnection && sent < total && Date.now() < until) setTimeout(burst, 1);
      else s.close();
    };
    s.once('connect', burst);
  });
}
Promise.all(Array.from({ length: connections }, run)).then(() => console.log(JSON.stringify({ sent, sessions, goaways })));
`;

interface FloodStats {
  sent: number;
  sessions: number;
  goaways: number;
}

function startFlood(args: Record<string, unknown>): Promise<FloodStats> {
  const child = spawn(process.execPath, ['-e', FLOOD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as FloodStats) : reject(new Error(`flood exited ${code}`)))),
  );
}

/** Sequential legitimate Checks (5 ms apart) until `until` settles or `max` calls; their latencies in ms. */
async function legitimateLatencies(check: () => Promise<{ status?: { code?: number } | null }>, max: number, until?: Promise<unknown>): Promise<number[]> {
  let running = true;
  void until?.finally(() => (running = false));
  const out: number[] = [];
  for (let i = 0; i < max && running; i++) {
    const t = performance.now();
    const res = await check();
    out.push(performance.now() - t);
    if (res.status?.code !== 0) throw new Error(`legitimate call not allowed: ${JSON.stringify(res.status)}`);
    await sleep(5);
  }
  return out;
}

describe('gRPC port under abuse', () => {
  const tmp = tempDir();
  let key: TestKey;
  let jwksDelayMs = 0;
  let slowJwks: Awaited<ReturnType<typeof loopbackServer>>;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    tmp.write('limits.yaml', 'domain: abuse\ndescriptors:\n  - key: k\n    rate_limit: {unit: minute, requests_per_unit: 3}\n');
    slowJwks = await loopbackServer((_req, res) => setTimeout(() => sendJson(res, jwks(key)), jwksDelayMs));
  });

  const config = (name: string, server: Record<string, unknown> = {}): string =>
    tmp.write(
      `${name}.yaml`,
      configYaml({
        server: { address: '127.0.0.1:0', ...server },
        check: { deadline_ms: 3000 },
        logging: { level: 'info' },
        authentication: {
          jwt: {
            issuers: [
              { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } },
              { issuer: SLOW_ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { url: `${slowJwks.url}/jwks`, allow_insecure_http: true } },
            ],
          },
        },
        ratelimit: { files: ['limits.yaml'] },
      }),
    );

  it('answers or resets body-less streams within the deadline, and memory returns near its baseline', async () => {
    const svc = await startInProcess(config('bodyless', { body_timeout_ms: 1000 }));
    try {
      const before = process.memoryUsage().rss;
      const started = Date.now();
      const sessions = Array.from({ length: 20 }, () => session(svc.address));
      // 20 connections x 50 streams: HEADERS only, no DATA, never END_STREAM; half with a grpc-timeout.
      const answers = await Promise.all(
        sessions.flatMap((s) => Array.from({ length: 50 }, (_, i) => rawRequest(s, CHECK, undefined, i % 2 ? { 'grpc-timeout': '500m' } : {}))),
      );
      const took = Date.now() - started;
      for (const s of sessions) s.close();
      expect(answers.every((a) => a.grpcStatus === String(status.DEADLINE_EXCEEDED) || a.rstCode !== undefined)).toBe(true);
      expect(answers.filter((a) => a.grpcStatus === String(status.DEADLINE_EXCEEDED)).length).toBe(1000);
      // The 1 s body wait, plus room for a loaded two-core CI machine running client and server in one process.
      expect(took).toBeLessThan(5000);
      await sleep(200);
      expect(process.memoryUsage().rss - before).toBeLessThan(64 * MB);
      expect(svc.logs.lines().filter((l) => l.event === 'check').length).toBe(0);
    } finally {
      await svc.shutdown();
    }
  });

  it('closes a connection that never sends the HTTP/2 preface within the configured timeout', async () => {
    const svc = await startInProcess(config('preface', { http2_preface_timeout_ms: 500 }));
    try {
      const [host, port] = [svc.address.slice(0, svc.address.lastIndexOf(':')), Number(svc.address.slice(svc.address.lastIndexOf(':') + 1))];
      const started = Date.now();
      const sock = tcpConnect(port, host);
      sock.on('error', () => undefined);
      sock.resume();
      await new Promise<void>((r) => sock.once('close', () => r()));
      expect(Date.now() - started).toBeGreaterThanOrEqual(450);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await svc.shutdown();
    }
  });

  it('withstands a rapid-reset flood over 20 connections: a legitimate client keeps being served, no reset stream is allowed, memory bounded', async () => {
    const svc = await startInProcess(config('flood'));
    const client = authzClient(svc.address);
    try {
      const legit = await signToken(key, { sub: 'alice' });
      const attacker = await signToken(key, { sub: 'attacker' });
      await client.check(checkRequest({ headers: { authorization: `Bearer ${legit}` } })); // warm up
      const req = checkRequest({ headers: { authorization: `Bearer ${legit}` } });
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      // Up to three rounds, each: the client alone, then the client during a flood. One round within
      // the bound passes: a stall of the host that hits a round is not the server's doing, a
      // server slowed by the flood fails them all (on a slower two-core host, an AMD EPYC VM where
      // an empty gRPC server does 4,500 calls/s, a round missed the bound at 52-65 ms in about a
      // third of the runs of both this code and the code before it). The target is a p99 under 50 ms (a quiet two-core
      // host measures 16-21 ms, the client alone 8-11 ms). When the host is busy with other test
      // files the client alone is slower too: the bound is then 4x its own p99 alone.
      let legitCalls = 1;
      const rounds: { p99: number; bound: number; baseline: number; stats: FloodStats; n: number }[] = [];
      for (let round = 0; round < 3 && !rounds.some((r) => r.p99 < r.bound); round++) {
        const alone = await legitimateLatencies(() => client.check(req), 60);
        const flood = startFlood({ address: svc.address, body: [...checkBody(attacker)], connections: 20, perConnection: 1000, total: 20000, ms: 3000 });
        const latencies = await legitimateLatencies(() => client.check(req), 1000, flood);
        const stats = await flood;
        legitCalls += alone.length + latencies.length;
        expect(stats.sent, JSON.stringify(stats)).toBeGreaterThan(500);
        expect(latencies.length).toBeGreaterThan(20);
        const baseline = p99(alone);
        rounds.push({ p99: p99(latencies), bound: Math.max(50, 4 * baseline), baseline, stats, n: latencies.length });
      }
      clearInterval(sampler);
      expect(rounds.some((r) => r.p99 < r.bound), JSON.stringify(rounds)).toBe(true);
      await sleep(200);
      const records = svc.logs.lines();
      expect(records.filter((l) => l.event === 'check' && l.subject === 'attacker' && l.allowed === true)).toEqual([]);
      expect(records.filter((l) => l.event === 'check' && l.subject === 'alice').length).toBe(legitCalls);
      expect(peak - before).toBeLessThan(150 * MB);
    } finally {
      client.close();
      await svc.shutdown();
    }
  }, 60_000);

  it('closes connections at the maximum age; a call in flight finishes within the grace period', async () => {
    jwksDelayMs = 1500;
    const svc = await startInProcess(config('age', { max_connection_age_ms: 1000, max_connection_age_grace_ms: 5000 }));
    try {
      const s = session(svc.address);
      let goawayAt = 0;
      s.once('goaway', () => (goawayAt = Date.now()));
      const closedAt = new Promise<number>((r) => s.once('close', () => r(Date.now())));
      const started = Date.now();
      // The call starts long before the GOAWAY (900-1100 ms after the connection opened), and the
      // slow JWKS holds it ~1,500 ms: in flight across the GOAWAY.
      await sleep(100);
      const answer = await rawRequest(s, CHECK, checkBody(await signToken(key, { iss: SLOW_ISSUER, sub: 'late' })));
      const answeredAt = Date.now();
      expect(answer.grpcStatus).toBe('0');
      expect(goawayAt).toBeGreaterThan(0);
      expect(goawayAt - started).toBeGreaterThanOrEqual(850);
      expect(goawayAt - started).toBeLessThan(3000);
      expect(answeredAt, 'answered after the GOAWAY: in flight across it').toBeGreaterThan(goawayAt);
      // Closed once the call is done, not at the end of the 5 s grace (about 4.4 s after the answer).
      expect((await closedAt) - answeredAt).toBeLessThan(1500);
      expect(svc.logs.lines().some((l) => l.event === 'check' && l.subject === 'late' && l.allowed === true)).toBe(true);
    } finally {
      jwksDelayMs = 0;
      await svc.shutdown();
    }
  });

  it('stops a Check reset mid-way before its decision: audit outcome "cancelled", never "allowed"', async () => {
    jwksDelayMs = 400;
    const svc = await startInProcess(config('cancel'));
    try {
      const s = session(svc.address);
      const req = s.request({ ':method': 'POST', ':path': CHECK, 'content-type': 'application/grpc', te: 'trailers' });
      req.on('error', () => undefined);
      req.end(checkBody(await signToken(key, { iss: SLOW_ISSUER, sub: 'gone' })));
      await sleep(150); // the Check is waiting for the JWKS
      req.close(constants.NGHTTP2_CANCEL);
      await sleep(600);
      s.close();
      const records = svc.logs.lines();
      expect(records).toContainEqual(expect.objectContaining({ event: 'check_cancelled', outcome: 'cancelled', allowed: false }));
      expect(records.filter((l) => l.event === 'check')).toEqual([]);
    } finally {
      jwksDelayMs = 0;
      await svc.shutdown();
    }
  });

  it('spends no rate-limit tokens for ShouldRateLimit calls reset before they ran', async () => {
    const svc = await startInProcess(config('rls'));
    const client = rlsClient(svc.address);
    try {
      const s = session(svc.address);
      for (let i = 0; i < 10; i++) sendAndReset(s, RLS, rlsBody('k'));
      await rawRequest(s, '/grpc.health.v1.Health/Check', grpcFrame(Buffer.alloc(0)));
      s.close();
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await client.shouldRateLimit('abuse', [[['k', 'v']]])).overall_code);
      expect(codes).toEqual(['OK', 'OK', 'OK', 'OVER_LIMIT']);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});

