// Rate-limit files compiled in a worker thread (src/ratelimit/load-off-thread.ts): the same
// domains as compiling them on the event loop, the same errors, a heap cap, and - what it is for -
// the event loop keeps running while a large file is read (in-thread, 10,000 descriptors held it
// for 1.5-2.5 s at every reload).
import { readdirSync, readFileSync, renameSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { ROOT } from '../../helpers/service.js';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/lib/errors.js';
import { loadRateLimitFiles, type DomainConfig, type Node } from '../../../src/ratelimit/config.js';
import { loadRateLimitFilesOffThread } from '../../../src/ratelimit/load-off-thread.js';
import { loadInParts } from '../../../src/lib/module-worker.js';
import { RateLimitConfigs } from '../../../src/ratelimit/reloader.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';
import { tempDir } from '../../helpers/tmp.js';
import { longestStopRetried } from '../../helpers/event-loop.js';

const tmp = tempDir();
const opts = { algorithm: 'token_bucket' as const };

/** `n` top-level descriptors (more than one batch of the worker's parts), with wildcards and nested levels among them. */
function bigFile(domain: string, n: number): string {
  const lines = [`domain: ${domain}`, 'descriptors:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  - key: tenant`, `    value: t${i}`, `    rate_limit: { unit: second, requests_per_unit: ${i + 1} }`);
    if (i % 97 === 0) lines.push(`  - key: path`, `    value: /api/${i}/*`, `    rate_limit: { unit: minute, requests_per_unit: 7 }`);
    if (i % 89 === 0) lines.push(`  - key: user`, `    value: u${i}`, `    metadata: { team: t${i}, n: [1, 2] }`, `    descriptors:`, `      - key: route`, `        value: r*`, `        rate_limit: { unit: hour, requests_per_unit: 3, name: r${i} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** Replaces a file at once (a rename): a worker never reads half of it. */
function replace(name: string, text: string): void {
  renameSync(tmp.write(`${name}.next`, text), join(tmp.dir, name));
}

/** The nice value of each thread of this process (/proc/self/task/<tid>/stat, field 19). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').flatMap((t) => {
    try {
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended meanwhile
    }
  });
}

/** Every wildcard's node is the child of the same id (as config.ts builds it), at every level. */
function wildcardsShareNodes(n: Node): boolean {
  return n.wildcards.every((w) => w.node === n.children.get(w.id)) && [...n.children.values()].every(wildcardsShareNodes);
}

describe('rate-limit files compiled off the event loop', () => {
  it('gives the same domains as compiling them in-thread, wildcards sharing their nodes', async () => {
    const a = tmp.write('a.yaml', bigFile('alpha', 1200));
    const b = tmp.write('b.yaml', bigFile('beta', 30));
    const c = tmp.write('c.yaml', 'domain: alpha\ndescriptors:\n  - key: other\n    value: x*\n    rate_limit: {unit: second, requests_per_unit: 1}\n');
    for (const [files, o] of [[[a, b], opts], [[a, b, c], { ...opts, mergeDomains: true }]] as const) {
      const off = await loadRateLimitFilesOffThread(files, o);
      const inThread = await loadRateLimitFiles(files, o);
      expect(off).toEqual(inThread);
      expect([...off.keys()]).toEqual([...inThread.keys()]);
      for (const d of off.values()) {
        expect([...d.root.children.keys()]).toEqual([...inThread.get(d.domain)!.root.children.keys()]);
        // Leaves carried in one part share one empty map, as in-thread (config.ts settle).
        const leaves = [...d.root.children.values()].filter((n) => n.children.size === 0);
        expect(leaves[1]!.children).toBe(leaves[0]!.children);
        expect(d.root.wildcards.length).toBeGreaterThan(0);
        expect(wildcardsShareNodes(d.root)).toBe(true);
      }
    }
    const merged = (await loadRateLimitFilesOffThread([a, b, c], { ...opts, mergeDomains: true })).get('alpha') as DomainConfig;
    expect(merged.root.children.has('other_x*')).toBe(true);
  });

  it('gives the same tree for any shape: 2,000 descriptors under one key, wildcards at three levels', async () => {
    const lines = ['domain: nested', 'descriptors:', '  - key: org', '    value: o*', '    descriptors:', '      - key: team', '        value: "*"', '        rate_limit: { unit: hour, requests_per_unit: 9 }'];
    for (let i = 0; i < 2000; i++) lines.push(`      - key: user`, `        value: u${i}${i % 50 === 0 ? '*' : ''}`, `        descriptors:`, `          - key: route`, `            value: r${i % 3}*`, `            rate_limit: { unit: second, requests_per_unit: ${i + 1} }`);
    const file = tmp.write('nested.yaml', `${lines.join('\n')}\n`);
    const off = await loadRateLimitFilesOffThread([file], opts);
    expect(off).toEqual(await loadRateLimitFiles([file], opts));
    const org = off.get('nested')!.root.children.get('org_o*')!;
    expect(org.children.size).toBe(2001);
    expect(wildcardsShareNodes(off.get('nested')!.root)).toBe(true);
  });

  it('ends a load whose part this thread cannot deserialize (messageerror), rather than waiting for ever', async () => {
    const err = await loadInParts({
      module: new URL('../../fixtures/workers/deep-part.ts', import.meta.url),
      data: null,
      heapMb: 64,
      take: () => undefined,
      done: () => 'done',
      outOfMemory: () => new Error('out of memory'),
    }).then(() => undefined, (e: unknown) => e);
    expect(String(err)).toMatch(/worker result could not be read/);
  });

  it('refuses metadata nested deeper than the service thread could read, rather than waiting for ever', async () => {
    // Deep enough that the worker's default 4 MB stack read it and this thread could not take it: waited for ever.
    const depth = 2000;
    const deep = `${'{a: '.repeat(depth)}1${'}'.repeat(depth)}`;
    const file = tmp.write('deep.yaml', `domain: deep\ndescriptors:\n  - key: k\n    metadata: ${deep}\n    rate_limit: { unit: second, requests_per_unit: 1 }\n${'# padding past the in-thread size\n'.repeat(1200)}`);
    const inThread = await loadRateLimitFiles([file], opts).then(() => 'loaded', (e: unknown) => e);
    expect(inThread).toBeInstanceOf(Error);
    const off = await loadRateLimitFilesOffThread([file], opts).then(() => 'loaded', (e: unknown) => e);
    expect(off).toBeInstanceOf(Error);
  });

  it('refuses what in-thread compiling refuses, with the same file and problems', async () => {
    const bad = tmp.write('bad.yaml', 'domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight, requests_per_unit: 1.5}\n    bogus: 1\n');
    const dup = tmp.write('dup.yaml', 'domain: alpha\n');
    const good = tmp.write('good.yaml', 'domain: alpha\n');
    for (const files of [[bad], [good, dup], [tmp.dir + '/missing.yaml']]) {
      const inThread = await loadRateLimitFiles(files, opts).then(() => undefined, (e: unknown) => e);
      const off = await loadRateLimitFilesOffThread(files, opts).then(() => undefined, (e: unknown) => e);
      expect(inThread).toBeInstanceOf(ConfigError);
      expect(off).toBeInstanceOf(ConfigError);
      expect({ file: (off as ConfigError).file, problems: (off as ConfigError).problems }).toEqual({ file: (inThread as ConfigError).file, problems: (inThread as ConfigError).problems });
    }
  });

  // node's --max-old-space-size overrides a worker's own cap (nodejs/node#43991).
  it.skipIf(/--max-old-space-size/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`))('refuses files that need more heap than the worker may take', async () => {
    // Enough heap to start and load its modules, not to parse 10,000 descriptors (~120 MB).
    const big = tmp.write('heap.yaml', bigFile('heap', 10_000));
    const err = await loadRateLimitFilesOffThread([big], opts, 48).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/heap\.yaml: \/: too large: reading the rate-limit files needs more than 48 MB/);
    // The same cap lets the worker start and read a smaller file: the refusal was the parse's.
    expect((await loadRateLimitFilesOffThread([tmp.write('heap-small.yaml', bigFile('small', 400))], opts, 48)).get('small')?.root.children.size).toBeGreaterThan(400);
  });

  it('keeps the event loop running while a reload reads 10,000 descriptors', async () => {
    const file = tmp.write('reload.yaml', 'domain: small\n');
    const logs = capture();
    const configs = new RateLimitConfigs([file], opts, createLogger('info', logs.stream));
    await configs.start(3_600_000);
    try {
      // Each reload brings a new domain (a second one only when the first run's gap was judged a
      // stall of the machine: longestStopRetried).
      let reloads = 0;
      const reload = (): Promise<void> => {
        reloads++;
        tmp.write('reload.yaml', bigFile(`large${reloads}`, 10_000));
        utimesSync(file, new Date(), new Date(Date.now() + 5000 * reloads));
        return configs.check();
      };
      // The worker runs at nice 19 (Linux): one CPU goes to it only when the service thread idles.
      const at19 = (): number => threadNices().filter((n) => n === 19).length;
      const before = at19();
      let niced = false;
      const look = setInterval(() => {
        niced ||= at19() > before;
      }, 50);
      const { longestMs, tookMs } = await longestStopRetried(reload, 200).finally(() => clearInterval(look));
      expect(niced, 'a thread of this process at nice 19 while the worker ran').toBe(true);
      expect(at19()).toBe(before); // and gone with it
      expect(configs.domains.get(`large${reloads}`)?.root.children.size).toBe(10_000 + Math.ceil(10_000 / 97) + Math.ceil(10_000 / 89));
      expect(logs.lines().map((l) => l.event)).toEqual(Array.from({ length: reloads }, () => 'ratelimit_config_reloaded'));
      // In-thread the reload stopped the event loop for all of its 1.5-2.5 s.
      expect(longestMs, `longest event-loop gap ${longestMs.toFixed(0)} ms of a ${tookMs.toFixed(0)} ms reload`).toBeLessThan(200);
    } finally {
      configs.stop();
    }
  });

  it('loads one change at a time, and a configuration closed mid-load ends its worker without a rejection', async () => {
    const file = tmp.write('serial.yaml', 'domain: first\n');
    const logs = capture();
    const configs = new RateLimitConfigs([file], opts, createLogger('info', logs.stream));
    await configs.start(3_600_000);
    replace('serial.yaml', bigFile('second', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const first = configs.check();
    await new Promise((r) => setTimeout(r, 20));
    // Written again while the first load runs: not loaded beside it (two loads could land in
    // either order, the older last)...
    replace('serial.yaml', bigFile('third', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 10000));
    const t = performance.now();
    await configs.check();
    expect(performance.now() - t).toBeLessThan(100);
    await first; // read the file as it was when its worker read it: either content
    // ...but by the next check after it, whatever the first one read.
    await configs.check();
    expect([...configs.domains.keys()]).toEqual(['third']);

    replace('serial.yaml', bigFile('fourth', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 15000));
    const closing = configs.check();
    // Stopped while its worker parses (a nice-19 thread of this process), not while it boots.
    const base = threadNices().filter((n) => n === 19).length;
    for (let i = 0; i < 200 && threadNices().filter((n) => n === 19).length <= base; i++) await new Promise((r) => setTimeout(r, 25));
    expect(threadNices().filter((n) => n === 19).length).toBeGreaterThan(base);
    const c = performance.now();
    configs.stop();
    await closing;
    expect(performance.now() - c).toBeLessThan(200);
    expect([...configs.domains.keys()]).toEqual(['third']);
    expect(logs.lines().map((l) => l.event)).toEqual(['ratelimit_config_reloaded', 'ratelimit_config_reloaded']);
    expect(configs.failures).toBe(0);
  });

  it('runs from the build as the image runs it (dist/, .js workers, no tsx)', async () => {
    const rules = tmp.write('dist-rules.yaml', bigFile('built', 2000));
    const keys = tmp.write('dist-keys.json', JSON.stringify({ keys: Array.from({ length: 600 }, (_, i) => ({ id: `k${String(i).padStart(11, '0')}`, digest: `sha256:${'a'.repeat(64)}`, owner: 'o', expires_at: '2099-01-01T00:00:00Z', ...(i === 0 ? { restrictions: { source_cidrs: ['10.0.0.0/8'] } } : {}) })) }));
    const script = `
      const { loadRateLimitFilesOffThread } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'ratelimit', 'load-off-thread.js'))});
      const { FileApiKeyStore } = await import(${JSON.stringify(join(ROOT, 'dist', 'src', 'authn', 'apikey-store.js'))});
      const d = await loadRateLimitFilesOffThread([${JSON.stringify(rules)}], { algorithm: 'token_bucket' });
      const k = await FileApiKeyStore.load({ file: 'c.yaml', dir: ${JSON.stringify(tmp.dir)} }, 'dist-keys.json');
      const rec = k.get('k00000000000');
      process.stdout.write(JSON.stringify({ children: d.get('built').root.children.size, keys: k.size, frozen: Object.isFrozen(rec), source: rec.sources.check('10.2.3.4') }));
    `;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    expect(JSON.parse(out)).toEqual({ children: 2000 + Math.ceil(2000 / 97) + Math.ceil(2000 / 89), keys: 600, frozen: true, source: true });
    expect(readFileSync(keys, 'utf8').length).toBeGreaterThan(32 * 1024); // so the keys went through the worker too
  });
});
