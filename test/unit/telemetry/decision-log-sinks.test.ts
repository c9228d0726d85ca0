// Decision-log sinks and the recorder on their own: the file sink rotates and bounds what waits;
// the uploader splits by the gzipped size limit, drops the oldest when full, and counts; console
// lines fit the 4 KB cap with decision_id kept; our redaction; a failing mask fails closed.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/check/decision.js';
import { parseConfig, type LoadedConfig } from '../../../src/config/loader.js';
import { workerConfig } from '../../../src/server/workers.js';
import { createLogger, MAX_LINE_BYTES } from '../../../src/telemetry/logger.js';
import { consoleSink } from '../../../src/telemetry/decision-log/console.js';
import { decisionEvent, type DecisionEvent } from '../../../src/telemetry/decision-log/event.js';
import { FileSink } from '../../../src/telemetry/decision-log/file.js';
import { DecisionRecorder } from '../../../src/telemetry/decision-log/recorder.js';
import { Scrubber } from '../../../src/telemetry/decision-log/scrub.js';
import type { SinkCounter, SinkName, SinkOutcome } from '../../../src/telemetry/decision-log/sink.js';
import { Uploader, backoffMs } from '../../../src/telemetry/decision-log/upload.js';
import { loopbackServer } from '../../helpers/http.js';
import { capture } from '../../helpers/log.js';
import { requestView } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';

function counter(): { count: SinkCounter; n: (sink: SinkName, outcome: SinkOutcome) => number } {
  const counts = new Map<string, number>();
  return {
    count: (sink, outcome, n) => counts.set(`${sink}/${outcome}`, (counts.get(`${sink}/${outcome}`) ?? 0) + n),
    n: (sink, outcome) => counts.get(`${sink}/${outcome}`) ?? 0,
  };
}

const event = (id: string, input: unknown = { a: 1 }): DecisionEvent =>
  decisionEvent({ labels: { id: 'i', version: 'v' }, decisionId: id, traceId: undefined, revision: 'r', path: 'envoy/authz/allow', input, result: true, time: new Date(), metrics: {} });

const quiet = createLogger('silent');

describe('file sink', () => {
  const tmp = tempDir();

  it('rotates before a write would pass max_bytes, keeping max_files rotated files', async () => {
    const path = join(tmp.dir, 'rot.log');
    const c = counter();
    const sink = new FileSink({ path, maxBytes: 4096, maxFiles: 2, bufferBytes: 1 << 20 }, quiet, c.count);
    for (let i = 0; i < 60; i++) {
      sink.write(event(`d${i}`, { pad: 'x'.repeat(200) }));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    await sink.close();
    expect(c.n('file', 'sent')).toBe(60);
    expect(existsSync(`${path}.1`) && existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const f of [path, `${path}.1`, `${path}.2`]) expect(statSync(f).size).toBeLessThanOrEqual(4096);
    const current = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DecisionEvent);
    expect(current.at(-1)!.decision_id).toBe('d59');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('drops the oldest events when more than buffer_bytes wait for the disk, and counts them', async () => {
    const path = join(tmp.dir, 'bounded.log');
    const c = counter();
    const sink = new FileSink({ path, maxBytes: 1 << 20, maxFiles: 1, bufferBytes: 4096 }, quiet, c.count);
    for (let i = 0; i < 100; i++) sink.write(event(`d${i}`, { pad: 'x'.repeat(200) }));
    await sink.close();
    expect(c.n('file', 'dropped')).toBeGreaterThan(0);
    expect(c.n('file', 'sent') + c.n('file', 'dropped')).toBe(100);
    const ids = readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as DecisionEvent).decision_id);
    expect(ids.at(-1)).toBe('d99');
  });
});

describe('uploader', () => {
  it('splits a buffer into gzipped bodies under the limit, in order, and drops an event too large alone', async () => {
    const bodies: Buffer[] = [];
    const receiver = await loopbackServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks));
        res.writeHead(204).end();
      });
    });
    const c = counter();
    const up = new Uploader(
      { endpoint: `${receiver.url}/logs`, timeoutMs: 5000, minDelayMs: 60_000, maxDelayMs: 60_000, maxEvents: 100, maxBufferBytes: 1 << 20, uploadLimitBytes: 700 },
      quiet,
      c.count,
    );
    // Random hex compresses about 2:1: a few events per body.
    for (let i = 0; i < 10; i++) up.write(event(`d${i}`, { r: randomBytes(150).toString('hex') }));
    up.write(event('huge', { r: randomBytes(2000).toString('hex') }));
    await up.flush();
    expect(bodies.length).toBeGreaterThan(2);
    for (const b of bodies) expect(b.length).toBeLessThanOrEqual(700);
    const ids = bodies.flatMap((b) => (JSON.parse(gunzipSync(b).toString()) as DecisionEvent[]).map((e) => e.decision_id));
    expect(ids).toEqual([...Array(10).keys()].map((i) => `d${i}`));
    expect(c.n('service', 'sent')).toBe(10);
    expect(c.n('service', 'dropped')).toBe(1);
    await up.close();
  });

  it('keeps at most buffer_size_limit_events, dropping the oldest', async () => {
    const c = counter();
    const up = new Uploader(
      { endpoint: 'http://127.0.0.1:9/logs', timeoutMs: 100, minDelayMs: 60_000, maxDelayMs: 60_000, maxEvents: 5, maxBufferBytes: 1 << 20, uploadLimitBytes: 32768 },
      quiet,
      c.count,
    );
    for (let i = 0; i < 8; i++) up.write(event(`d${i}`));
    expect(up.pending).toBe(5);
    expect(c.n('service', 'dropped')).toBe(3);
    // A failed upload keeps them (at the front) and counts the failure.
    await up.flush();
    expect(c.n('service', 'failed')).toBe(1);
    expect(up.pending).toBe(5);
    await up.close();
  });

  it('backs off exponentially from 100 ms, capped at max_delay', () => {
    const mid = (): number => 0.5;
    expect(backoffMs(10_000, 0, mid)).toBe(100);
    expect(backoffMs(10_000, 3, mid)).toBeCloseTo(409.6);
    expect(backoffMs(10_000, 30, mid)).toBe(10_000);
  });
});

describe('console sink', () => {
  it('fits a large event into one line under 4 KB, keeping decision_id', () => {
    const logs = capture();
    const c = counter();
    const sink = consoleSink(createLogger('info', logs.stream), c.count);
    const big: Record<string, string> = {};
    for (let i = 0; i < 200; i++) big[`h${i}`] = 'v'.repeat(100);
    sink.write(event('big-one', big));
    sink.write(event('small-one'));
    const [line1, line2] = logs.text().trim().split('\n');
    expect(Buffer.byteLength(line1!)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    const rec = JSON.parse(line1!) as Record<string, unknown>;
    expect(rec).toMatchObject({ decision_id: 'big-one', msg: 'Decision Log', input: { truncated: true } });
    expect(JSON.parse(line2!)).toMatchObject({ decision_id: 'small-one', input: { a: 1 } });
    expect(c.n('console', 'sent')).toBe(2);
  });
});

describe('our redaction of events', () => {
  it('censors credential-named values (listed as masked) and credential shapes, without touching the caller\'s objects', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
    const input = { attributes: { request: { http: { headers: { authorization: `Bearer ${jwt}`, 'x-my-key': 'k', accept: '*/*' }, body: `token is ${jwt}` } } }, flags: { token: true } };
    const ev = event('d', input);
    new Scrubber(['x-my-key']).scrub(ev);
    const http = (ev.input as typeof input).attributes.request.http;
    expect(http.headers).toEqual({ authorization: '[REDACTED]', 'x-my-key': '[REDACTED]', accept: '*/*' });
    expect(http.body).toBe('token is [REDACTED]');
    expect((ev.input as typeof input).flags.token).toBe(true);
    expect(ev.masked).toEqual(['/input/attributes/request/http/headers/authorization', '/input/attributes/request/http/headers/x-my-key']);
    expect(input.attributes.request.http.headers.authorization).toBe(`Bearer ${jwt}`);
  });
});

describe('our redaction of raw headers', () => {
  it('censors the value of a raw header entry named like a credential (base64 hides its shape)', () => {
    const b64 = (x: string): string => Buffer.from(x).toString('base64');
    const entries = [
      { key: 'authorization', rawValue: b64('Bearer abc.def.ghi') },
      { key: 'x-my-key', rawValue: b64('k-123') },
      { key: 'cookie', value: 'session=s3cret' },
      { key: 'accept', rawValue: b64('*/*') },
    ];
    const ev = event('d', { attributes: { request: { http: { headerMap: { headers: entries } } } } });
    new Scrubber(['x-my-key']).scrub(ev);
    const out = (ev.input as { attributes: { request: { http: { headerMap: { headers: typeof entries } } } } }).attributes.request.http.headerMap.headers;
    expect(out).toEqual([
      { key: 'authorization', rawValue: '[REDACTED]' },
      { key: 'x-my-key', rawValue: '[REDACTED]' },
      { key: 'cookie', value: '[REDACTED]' },
      { key: 'accept', rawValue: b64('*/*') },
    ]);
    expect(ev.masked).toEqual([
      '/input/attributes/request/http/headerMap/headers/0/rawValue',
      '/input/attributes/request/http/headerMap/headers/1/rawValue',
      '/input/attributes/request/http/headerMap/headers/2/value',
    ]);
  });
});

describe('recorder', () => {
  const identity = { subject: 'alice', issuer: 'https://i', kind: 'user', method: 'jwt', scopes: [], roles: [], claims: {} } as const;
  const decision = (): Decision => ({
    allowed: true,
    route: 'r',
    identity,
    upstreamHeaders: {},
    removeHeaders: [],
    decisionId: 'dec-1',
    policyRevision: 'rev',
    evaluation: { input: { identity, attributes: { request: { http: { path: '/p' } } } }, result: true, evalNs: 5 },
  });

  it('applies the mask to the audit record: erase, upsert of a parent, and nothing for /result', () => {
    const mask = ['/input/attributes/request/http/path', '/result', { op: 'upsert', path: '/input/identity', value: { subject: 'someone' } }];
    const rec = new DecisionRecorder({ hasEntrypoint: () => true, evaluateEntrypoint: () => mask }, { decisionPath: 'envoy/authz/allow', labels: {}, scrubber: new Scrubber([]), sinks: [], count: () => undefined }, quiet).checkRecord(
      requestView({ path: '/p' }),
      decision(),
      1,
      undefined,
    );
    expect(rec).not.toHaveProperty('path');
    expect(rec).not.toHaveProperty('issuer');
    expect(rec).toMatchObject({ subject: 'someone', allowed: true, status: 200, erased: ['/input/attributes/request/http/path'], masked: ['/input/identity'], decision_id: 'dec-1' });
  });

  it('fails closed when the mask is malformed: no event, no request fields in the audit record', () => {
    const c = counter();
    const written: DecisionEvent[] = [];
    const rec = new DecisionRecorder(
      { hasEntrypoint: () => true, evaluateEntrypoint: () => ['/data/secret'] },
      { decisionPath: 'envoy/authz/allow', labels: {}, scrubber: new Scrubber([]), sinks: [{ name: 'file', write: (e) => written.push(e), close: () => Promise.resolve() }], count: c.count },
      quiet,
    ).checkRecord(requestView({ path: '/p' }), decision(), 1, undefined);
    expect(written).toEqual([]);
    expect(c.n('file', 'dropped')).toBe(1);
    expect(rec).toMatchObject({ mask_error: true, allowed: true, decision_id: 'dec-1' });
    for (const f of ['path', 'host', 'subject', 'source', 'query_keys']) expect(rec).not.toHaveProperty(f);
  });
});

describe('workers', () => {
  it('give each worker a decision-log file of its own (rotation would race on one file)', () => {
    const config = parseConfig('/etc/authz.yaml', 'admin: {address: "127.0.0.1:9192"}\ndecision_logs: {file: {path: decisions.log}}\n');
    const loaded = { file: '/etc/authz.yaml', dir: '/etc', config } as LoadedConfig;
    expect(workerConfig(loaded, 0).config.decision_logs?.file?.path).toBe('decisions.log');
    const w2 = workerConfig(loaded, 2).config;
    expect(w2.decision_logs?.file?.path).toBe('decisions.log.worker-2');
    expect(w2.admin.address).toBe('127.0.0.1:9194');
  });
});

describe('uploader on close', () => {
  it('makes one last upload, and counts as dropped what it could not send', async () => {
    const c = counter();
    const up = new Uploader(
      { endpoint: 'http://127.0.0.1:9/logs', timeoutMs: 200, minDelayMs: 60_000, maxDelayMs: 60_000, maxEvents: 100, maxBufferBytes: 1 << 20, uploadLimitBytes: 32768 },
      quiet,
      c.count,
    );
    for (let i = 0; i < 4; i++) up.write(event(`d${i}`));
    await up.close();
    expect(c.n('service', 'failed')).toBe(1);
    expect(c.n('service', 'dropped')).toBe(4);
    up.write(event('late'));
    expect(up.pending).toBe(0);
  });

  it('counts as dropped what an upload still in flight when close() gives up fails to send', async () => {
    // A receiver that never answers: the POST outlives close() and then times out.
    const receiver = await loopbackServer(() => undefined);
    const c = counter();
    const up = new Uploader(
      { endpoint: `${receiver.url}/logs`, timeoutMs: 300, closeBudgetMs: 50, minDelayMs: 60_000, maxDelayMs: 60_000, maxEvents: 100, maxBufferBytes: 1 << 20, uploadLimitBytes: 32768 },
      quiet,
      c.count,
    );
    for (let i = 0; i < 4; i++) up.write(event(`d${i}`));
    await up.close();
    for (let i = 0; i < 40 && c.n('service', 'dropped') === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(c.n('service', 'dropped')).toBe(4);
    expect(up.pending).toBe(0);
  });
});

describe('labels', () => {
  it('the instance id is one per process (a config reload builds new labels with the same id)', async () => {
    const { eventLabels } = await import('../../../src/telemetry/decision-log/event.js');
    const a = eventLabels({ env: 'a' });
    const b = eventLabels({ env: 'b' });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.id).toBe(a.id);
    expect(b.env).toBe('b');
  });
});
