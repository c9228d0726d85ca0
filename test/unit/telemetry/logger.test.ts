import { describe, expect, it, vi } from 'vitest';
import { generateApiKey } from '../../../src/authn/apikey-format.js';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { byteDestination, nonBlockingWriter, writesBytes } from '../../../src/telemetry/line-destination.js';
import { MAX_LINE_BYTES, REDACTED, capLine, createLogger, redact, writeInfo } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';

describe('logger redaction', () => {
  const secret = 'eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln';

  it('censors credentials wherever they appear, configured once', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ authorization: `Bearer ${secret}` }, 'top');
    log.info({ headers: { authorization: `Bearer ${secret}`, cookie: `session=${secret}`, 'x-api-key': secret } }, 'nested');
    log.info({ req: { headers: { authorization: secret, 'proxy-authorization': secret } } }, 'deeper');
    log.info({ token: secret, client_secret: secret, password: secret }, 'fields');
    const text = out.text();
    expect(text).not.toContain(secret);
    expect(text.split(REDACTED).length - 1).toBe(9);
  });

  it('censors keys in any case, inside arrays, three levels down and in child bindings', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ a: { b: { c: { Authorization: secret } } } }, 'three down');
    log.info({ calls: [{ headers: { Cookie: secret } }, { ok: 1 }] }, 'array');
    log.child({ api_key: secret }).info('child');
    const text = out.text();
    expect(text).not.toContain(secret);
    expect(text.split(REDACTED).length - 1).toBe(3);
  });

  it('never modifies the caller\'s object and copies nothing when there is nothing to censor', () => {
    const headers = { authorization: secret, accept: 'json' };
    const rec = { headers, path: '/x' };
    const out = redact(rec) as { headers: Record<string, string> };
    expect(out.headers.authorization).toBe(REDACTED);
    expect(headers.authorization).toBe(secret);
    const clean = { subject: 'u1', roles: ['a'], nested: { path: '/x' } };
    expect(redact(clean)).toBe(clean);
  });

  it('keeps non-sensitive fields', () => {
    const out = capture();
    createLogger('info', out.stream).info({ subject: 'u1', path: '/x' }, 'm');
    expect(JSON.parse(out.text())).toMatchObject({ subject: 'u1', path: '/x', level: 'info', service: 'envoy-authz' });
  });
});

describe('logger: no depth limit, cycles, context', () => {
  it('censors a credential ten levels down', () => {
    const out = capture();
    createLogger('info', out.stream).info({ a: { b: { c: { d: { e: { f: { g: { h: { i: { authorization: 'hunter2-not-a-shape' } } } } } } } } } }, 'deep');
    expect(out.text()).not.toContain('hunter2');
    const rec = out.lines()[0] as { a: { b: { c: { d: { e: { f: { g: { h: { i: { authorization: string } } } } } } } } } };
    expect(rec.a.b.c.d.e.f.g.h.i.authorization).toBe(REDACTED);
  });

  it('replaces what lies beyond 32 levels instead of passing it through', () => {
    let deep: Record<string, unknown> = { password: 'hunter2-not-a-shape' };
    for (let i = 0; i < 40; i++) deep = { next: deep };
    const out = capture();
    createLogger('info', out.stream).info({ deep }, 'very deep');
    expect(out.text()).not.toContain('hunter2');
    expect(out.text()).toContain('[Too deep]');
  });

  it('stops on a cyclic object and still censors inside it', () => {
    const node: Record<string, unknown> = { name: 'n', password: 'hunter2-not-a-shape' };
    node.self = node;
    node.list = [node, { cookie: 'c=hunter2' }];
    const out = capture();
    createLogger('info', out.stream).info({ node }, 'cyclic');
    const text = out.text();
    expect(text).not.toContain('hunter2');
    expect(text).toContain('[Circular]');
    expect(JSON.parse(text)).toMatchObject({ node: { name: 'n', password: REDACTED } });
  });

  it('redacts a record whose getter logs (a walk inside a walk), and a record after a walk that threw', () => {
    const inner = { password: 'hunter2-not-a-shape', name: 'inner' };
    let innerOut: unknown;
    const outer = {
      node: { cookie: 'c=hunter2' },
      get nested() {
        innerOut = redact({ inner, up: outer.node });
        return 'v';
      },
    };
    expect(redact(outer)).toEqual({ node: { cookie: REDACTED }, nested: 'v' });
    expect(innerOut).toEqual({ inner: { password: REDACTED, name: 'inner' }, up: { cookie: REDACTED } });
    const throwing = {
      a: {
        get b(): string {
          throw new Error('getter failed');
        },
      },
    };
    expect(() => redact(throwing)).toThrow('getter failed');
    // The next walk starts from the root: not a cycle, not too deep.
    const shared = { token: 't' };
    expect(redact({ x: shared, y: shared })).toEqual({ x: { token: REDACTED }, y: { token: REDACTED } });
  });

  it('shows which modes are on in the startup summary (booleans are no secret)', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ event: 'started', tls: false, token: true, authorization: false, revocation: 'memory', ratelimit: 'redis' }, 'serving');
    log.child({ token: true }).info({ event: 'x' }, 'child');
    const [started, child] = out.lines();
    expect(started).toMatchObject({ token: true, authorization: false, tls: false, revocation: 'memory', ratelimit: 'redis' });
    expect(child).toMatchObject({ token: true });
    // A string under the same key is still censored, at the top and in bindings.
    log.info({ token: 'opaque-value-123' }, 'str');
    log.child({ token: 'opaque-value-123' }).info('child str');
    expect(out.text()).not.toContain('opaque-value-123');
  });
});

describe('logger: every field bounded, credentials masked by shape', () => {
  const jwt = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU';

  it('cuts every string at 256 characters with a marker, at any depth, in arrays and in the message', () => {
    const out = capture();
    const long = 'x'.repeat(10_000);
    createLogger('info', out.stream).info(
      { path: `/${long}`, request_id: long, descriptor: [{ key: 'k', value: long }], nested: { deeper: [long] }, query_keys: Array.from({ length: 500 }, (_, i) => `k${i}`) },
      `message ${long}`,
    );
    const rec = out.lines()[0] as { path: string; request_id: string; descriptor: { value: string }[]; nested: { deeper: string[] }; query_keys: string[]; msg: string };
    expect(rec.path).toBe(`/${'x'.repeat(255)}…[+9745]`);
    expect(rec.request_id).toBe(`${'x'.repeat(256)}…[+9744]`);
    expect(rec.descriptor[0]!.value).toMatch(/^x{256}…\[\+9744\]$/);
    expect(rec.nested.deeper[0]).toMatch(/^x{256}…\[\+9744\]$/);
    expect(rec.msg).toMatch(/^message x{248}…\[\+9752\]$/);
    expect(rec.query_keys).toHaveLength(65);
    expect(rec.query_keys[64]).toBe('…[+436]');
    expect(out.text().length).toBeLessThan(4096);
  });

  it('masks JWTs, API keys and bearer credentials in any field, and long opaque values in request fields', () => {
    const key = generateApiKey('eak');
    const secret = key.key.split('_')[2]!;
    const opaque = 'Zk9xQ2V1b3B0aW9uYWxseUxvbmdPcGFxdWVUb2tlbjEyMzQ1Njc4OQ';
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info({ path: `/files/${jwt}/x`, request_id: jwt, descriptor: [{ key: 'api', value: key.key }], err: `upstream said: Bearer ${opaque} is bad` }, 'shapes');
    log.info({ path: `/reset/${opaque}`, request_id: opaque, host: `${jwt.slice(0, 60)}` }, 'request fields');
    log.warn(`admin_error: DELETE /v1/revocations/api_key/${key.key}`);
    const text = out.text();
    for (const s of [jwt.split('.')[1]!, jwt.split('.')[2]!, secret, opaque]) expect(text).not.toContain(s);
    const [a, b, c] = out.lines();
    expect(a).toMatchObject({ path: `/files/${REDACTED}/x`, request_id: REDACTED, descriptor: [{ key: 'api', value: `eak_${key.id}_${REDACTED}` }], err: `upstream said: Bearer ${REDACTED} is bad` });
    expect(b).toMatchObject({ path: `/reset/${REDACTED}`, request_id: REDACTED, host: REDACTED });
    expect(c!.msg).toBe(`admin_error: DELETE /v1/revocations/api_key/eak_${key.id}_${REDACTED}`);
  });

  it('leaves ids, slugs, hashes and ordinary text alone', () => {
    const rec = {
      decision_id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      path: '/blog/2026/this-is-a-rather-long-article-title-about-Events-in-2026',
      request_id: 'a3f1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8',
      subject: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
      reason: 'token_expired',
      err: 'the bearer token was refused: signature_invalid',
      api_key_id: 'AbCdEf123456',
    };
    expect(redact(rec)).toBe(rec);
  });

  it('replaces a line over 4 KB by a short valid record that says so', () => {
    const out = capture();
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, 'y'.repeat(300)]));
    createLogger('info', out.stream).child({ worker: 3 }).warn({ event: 'big', ...many }, 'too much');
    const line = out.text();
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(line.endsWith('\n')).toBe(true);
    const rec = JSON.parse(line) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'warn', event: 'big', msg: 'too much', worker: 3, service: 'envoy-authz', truncated: true });
    expect(rec.line_bytes).toBeGreaterThan(25_000);
    expect(typeof rec.head).toBe('string');
  });

  it('keeps a short line as it is', () => {
    const line = '{"level":"info","msg":"ok"}\n';
    expect(capLine(line)).toBe(line);
    const wide = `{"msg":"${'é'.repeat(2000)}"}\n`;
    expect(Buffer.byteLength(capLine(wide))).toBeLessThanOrEqual(MAX_LINE_BYTES);
  });
});

describe('writeInfo (the audit record fast path)', () => {
  const records: [string, Record<string, unknown>, string][] = [
    ['an audit record', { event: 'check', decision_id: 'd', trace_id: null, request_id: 'r', source: '127.0.0.1', path: '/orders/42', query_keys: ['view'], allowed: true, status: 200, duration_ms: 3.701, subject: undefined }, 'allowed'],
    ['credentials and credential shapes', { event: 'check', token: 'abc', authorization: { nested: 1 }, path: `/x?t=eyJhbGciOiJFUzI1NiJ9.c2VjcmV0.c2ln`, password: true, api_key: 42 }, 'denied'],
    ['escapes, numbers and nesting', { event: 'check', host: 'a"b\\c\n\u0001é✓', n: Number.NaN, inf: -Infinity, list: [1, 'two', null, { deep: ['x'] }], openapi_errors: [{ pointer: '/a', problem: 'b' }] }, 'message "quoted"\nline'],
    ['an empty record', {}, 'empty'],
    ['a long field', { event: 'check', path: 'p'.repeat(5000) }, 'm'.repeat(400)],
  ];
  for (const [name, rec, msg] of records) {
    it(`writes the line log.info writes: ${name}`, () => {
      const viaPino = capture();
      const viaFast = capture();
      const a = createLogger('info', viaPino.stream).child({ worker: 1 });
      const b = createLogger('info', viaFast.stream).child({ worker: 1 });
      a.info(rec, msg);
      writeInfo(b, rec, msg);
      const strip = (t: string): string => t.replace(/"time":"[^"]+"/, '"time":"T"');
      expect(strip(viaFast.text())).toBe(strip(viaPino.text()));
      expect(viaFast.text().endsWith('\n')).toBe(true);
    });
  }

  it('caps a record longer than a line as log.info does', () => {
    const out = capture();
    writeInfo(createLogger('info', out.stream), { event: 'check', list: Array.from({ length: 60 }, () => 'x'.repeat(250)) }, 'big');
    const [line] = out.lines();
    expect(line).toMatchObject({ event: 'check', truncated: true, msg: 'big' });
    expect(Buffer.byteLength(out.text())).toBeLessThanOrEqual(MAX_LINE_BYTES);
  });

  it('writes nothing below its level', () => {
    const out = capture();
    writeInfo(createLogger('warn', out.stream), { event: 'check' }, 'quiet');
    expect(out.text()).toBe('');
  });
});

describe('stdout as bytes (line-destination.ts)', () => {
  const fileDestination = (): { dest: ReturnType<typeof byteDestination>; read: () => Promise<string>; file: string } => {
    const file = join(mkdtempSync(join(tmpdir(), 'lines-')), 'out.log');
    const dest = byteDestination(openSync(file, 'w'), MAX_LINE_BYTES);
    return {
      dest,
      file,
      read: async () => {
        const closed = once(dest, 'close');
        dest.end();
        await closed;
        return readFileSync(file, 'utf8');
      },
    };
  };
  const strip = (t: string): string => t.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'T');

  it('writes, for every audit record, the line pino writes, in the order written', async () => {
    const viaPino = capture();
    const out = fileDestination();
    const a = createLogger('info', viaPino.stream).child({ worker: 1 });
    const b = createLogger('info', out.dest).child({ worker: 1 });
    const records: [Record<string, unknown>, string][] = [
      [{ event: 'check', decision_id: 'd', trace_id: null, path: '/orders/42', query_keys: ['view'], allowed: true, duration_ms: 3.701 }, 'allowed'],
      [{ event: 'check', host: 'a"b\\c\n\u0001é✓日本', token: 'abc', list: [1, 'two', null, { deep: ['x'] }] }, 'message "quoted"\nline ✓'],
      [{}, 'empty'],
      [{ event: 'check', path: 'p'.repeat(5000) }, 'm'.repeat(400)],
      [{ event: 'check', list: Array.from({ length: 60 }, () => 'é'.repeat(250)) }, 'over a line'],
    ];
    for (const [rec, msg] of records) {
      a.info(rec, msg);
      writeInfo(b, rec, msg);
      // pino's own writes (strings) go to the same destination, between the audit lines.
      a.warn({ event: 'between' }, 'x');
      b.warn({ event: 'between' }, 'x');
    }
    const buffers = vi.spyOn(out.dest, 'write');
    writeInfo(b, { event: 'check', path: '/short' }, 'short');
    // A short record is written as a Buffer made for it (the staging path), not as a string.
    expect(buffers.mock.calls.map(([line]) => Buffer.isBuffer(line))).toEqual([true]);
    a.info({ event: 'check', path: '/short' }, 'short');
    const written = await out.read();
    expect(strip(written)).toBe(strip(viaPino.text()));
    for (const line of written.split('\n').filter(Boolean)) expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(MAX_LINE_BYTES);
  });

  it('is pino\'s safe destination: an EPIPE silences every writer, the audit path included', async () => {
    const out = fileDestination();
    const log = createLogger('info', out.dest);
    out.dest.emit('error', Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
    writeInfo(log, { event: 'check' }, 'after');
    log.info('after too');
    expect(writesBytes(out.dest)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(out.file, 'utf8')).toBe('');
  });

  it('writes in place only where a write cannot wait: /dev/null yes, a regular file no', () => {
    const devNull = openSync('/dev/null', 'w');
    const file = openSync(join(mkdtempSync(join(tmpdir(), 'lines-')), 'out.log'), 'w');
    try {
      expect(nonBlockingWriter(devNull)).toBe(devNull);
      expect(nonBlockingWriter(file)).toBe(undefined);
      expect(nonBlockingWriter(-1)).toBe(undefined);
      expect(byteDestination(devNull, MAX_LINE_BYTES).inPlace).toBe(true);
      expect(byteDestination(file, MAX_LINE_BYTES).inPlace).toBe(false);
    } finally {
      closeSync(devNull);
      closeSync(file);
    }
  });

  const fifo = (mode = constants.O_NONBLOCK): { reader: number; writer: number; close: () => void } => {
    const path = join(mkdtempSync(join(tmpdir(), 'lines-')), 'fifo');
    execFileSync('mkfifo', [path]);
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(path, constants.O_WRONLY | mode);
    return { reader, writer, close: () => [reader, writer].forEach((fd) => closeSync(fd)) };
  };
  const nonBlocking = (fd: number): boolean => (parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))![1]!, 8) & constants.O_NONBLOCK) !== 0;

  it('writes a pipe through a non-blocking description of its own, whatever the mode of the one it was given', () => {
    // A blocking stdout pipe: so is every process's after libuv spawned a child that inherits it
    // (cluster.fork), whatever it was before.
    const p = fifo(0);
    const own = nonBlockingWriter(p.writer);
    try {
      expect(own).not.toBe(undefined);
      expect(own).not.toBe(p.writer);
      expect(nonBlocking(own!)).toBe(true);
      expect(nonBlocking(p.writer)).toBe(false);
    } finally {
      if (own !== undefined) closeSync(own);
      p.close();
    }
  });

  const readNow = (fd: number): string => {
    const buf = Buffer.alloc(65536);
    try {
      return buf.subarray(0, readSync(fd, buf)).toString();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return '';
      throw err;
    }
  };

  it('writes the lines of one turn together at its end, and at once on flushSync (pino, on exit)', async () => {
    const p = fifo();
    try {
      const dest = byteDestination(p.writer, MAX_LINE_BYTES);
      expect(dest.inPlace).toBe(true);
      dest.write('a\n');
      dest.write(Buffer.from('b\n'));
      expect(readNow(p.reader)).toBe('');
      await new Promise((r) => setImmediate(r));
      expect(readNow(p.reader)).toBe('a\nb\n');
      dest.write('c\n');
      dest.flushSync();
      expect(readNow(p.reader)).toBe('c\n');
      // A turn over the line cap goes out as it fills, in writes of whole lines within the cap.
      const line = `${'y'.repeat(999)}\n`;
      for (let i = 0; i < 5; i++) dest.write(line);
      expect(readNow(p.reader)).toBe(line.repeat(4));
      await new Promise((r) => setImmediate(r));
      expect(readNow(p.reader)).toBe(line);
    } finally {
      p.close();
    }
  });

  it('is silent after EPIPE in place too, and requests go on', async () => {
    const p = fifo();
    closeSync(p.reader);
    const dest = byteDestination(p.writer, MAX_LINE_BYTES);
    const log = createLogger('info', dest);
    const writer = (): unknown => Reflect.get(dest, 'write');
    const ours = writer();
    writeInfo(log, { event: 'check' }, 'into a closed pipe');
    log.info('and again');
    // The failed writev hands the lines to SonicBoom, whose EPIPE pino's handler takes: every
    // writer is a no-op from then on, and nothing is thrown at a caller.
    await vi.waitFor(() => expect(writer()).not.toBe(ours));
    writeInfo(log, { event: 'check' }, 'after');
    closeSync(p.writer);
  });

  // A child writes 20,000 lines (4 MB) at once into its stdout while nobody reads it: the pipe
  // fills, the writes in place meet EAGAIN, and SonicBoom waits the rest out. Every line must
  // arrive whole and in order.
  const child = async (count: number, how: 'end' | 'exit' | 'spawn', waitMs: number): Promise<{ lines: string[]; report: string }> => {
    // stdout on a FIFO, as container runtimes give one (a spawned child's 'pipe' is a socket).
    const p = fifo(0);
    const c = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../../fixtures/logging/line-writer.ts'), String(count), how], { stdio: ['ignore', p.writer, 'pipe'] });
    closeSync(p.writer);
    let report = '';
    c.stderr?.on('data', (d: Buffer) => (report += d.toString()));
    // Nobody reads for waitMs after the child starts writing.
    await vi.waitFor(() => expect(report).toContain('writing'), { timeout: 20_000, interval: 10 });
    await new Promise((r) => setTimeout(r, waitMs));
    let text = '';
    const exited = once(c, 'close');
    let code: number | null | undefined;
    void exited.then(([c0]) => (code = c0 as number | null));
    for (;;) {
      // Once the child has exited, all it wrote is in the pipe: an empty read is the end.
      const exitedBefore = code !== undefined;
      const got = readNow(p.reader);
      text += got;
      if (got !== '') continue;
      if (exitedBefore) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    closeSync(p.reader);
    expect(code, report).toBe(0);
    return { lines: text.split('\n'), report };
  };
  const numbered = (count: number): string[] => [...Array.from({ length: count }, (_, i) => `${i} ${'x'.repeat(200)}`), ''];

  // 'end': the pipe fills while nobody reads. 'spawn': the same after another process that
  // inherits stdout made it blocking (cluster.fork does): a write(2) on stdout's own description
  // would have held the loop for as long as nobody reads.
  it.each(['end', 'spawn'] as const)('keeps every line whole and in order when the pipe is full, never holding the loop (%s)', async (how) => {
    const count = 20_000;
    // Nobody reads for 2 s: a write that held the loop would hold it that long. Half of it is the
    // bound, far over what a stall of the machine adds.
    const waitMs = 2000;
    const { lines, report } = await child(count, how, waitMs);
    expect(lines).toEqual(numbered(count));
    const [, inPlace, heldMs] = /inPlace=(\w+) heldMs=(\d+)/.exec(report) ?? [];
    expect(inPlace).toBe('true');
    expect(Number(heldMs)).toBeLessThan(waitMs / 2);
  }, 30_000);

  it('writes the lines of the turn a process exits in (a cluster worker ends with process.exit)', async () => {
    const { lines } = await child(5, 'exit', 0);
    expect(lines).toEqual(numbered(5));
  }, 30_000);

  it('writes every line on process.exit while the pipe is full, waiting for the reader', async () => {
    // SonicBoom's flushSync skipped its write in flight (retrying after EAGAIN): one line lost.
    const { lines } = await child(20_000, 'exit', 1000);
    expect(lines).toEqual(numbered(20_000));
  }, 30_000);
});

describe('logger time', () => {
  it('stamps every line with the current time in ISO 8601 (UTC, milliseconds), as pino\'s isoTime', async () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    log.info('one');
    await new Promise((r) => setTimeout(r, 5));
    writeInfo(log, { event: 'check' }, 'two');
    const [a, b] = out.lines().map((l) => l.time as string);
    for (const t of [a!, b!]) {
      expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(t) - Date.now())).toBeLessThan(1000);
    }
    expect(Date.parse(b!)).toBeGreaterThan(Date.parse(a!));
  });
});
