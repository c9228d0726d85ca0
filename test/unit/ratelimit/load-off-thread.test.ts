// Rate-limit files compiled in a worker thread (src/ratelimit/load-off-thread.ts): the same
// domains as compiling them on the event loop, the same errors, a heap cap, and - what it is for -
// the event loop keeps running while a large file is read (in-thread, 10,000 descriptors held it
// for 1.5-2.5 s at every reload).
import { readdirSync, readFileSync, utimesSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/lib/errors.js';
import { loadRateLimitFiles, type DomainConfig, type Node } from '../../../src/ratelimit/config.js';
import { loadRateLimitFilesOffThread } from '../../../src/ratelimit/load-off-thread.js';
import { RateLimitConfigs } from '../../../src/ratelimit/reloader.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';
import { tempDir } from '../../helpers/tmp.js';

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
        expect(d.root.wildcards.length).toBeGreaterThan(0);
        expect(wildcardsShareNodes(d.root)).toBe(true);
      }
    }
    const merged = (await loadRateLimitFilesOffThread([a, b, c], { ...opts, mergeDomains: true })).get('alpha') as DomainConfig;
    expect(merged.root.children.has('other_x*')).toBe(true);
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

  it('refuses files that need more heap than the worker may take', async () => {
    const big = tmp.write('heap.yaml', bigFile('heap', 3000));
    const err = await loadRateLimitFilesOffThread([big], opts, 8).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(/heap\.yaml: \/: too large: reading the rate-limit files needs more than 8 MB/);
  });

  it('keeps the event loop running while a reload reads 10,000 descriptors', async () => {
    const file = tmp.write('reload.yaml', 'domain: small\n');
    const logs = capture();
    const configs = new RateLimitConfigs([file], opts, createLogger('info', logs.stream));
    await configs.start(3_600_000);
    try {
      tmp.write('reload.yaml', bigFile('large', 10_000));
      utimesSync(file, new Date(), new Date(Date.now() + 5000));
      // A 2 ms timer: its longest gap is the longest the event loop stood still.
      let last = performance.now();
      let longest = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        longest = Math.max(longest, now - last);
        last = now;
      }, 2);
      const started = performance.now();
      // The worker runs at nice 19 (Linux): one CPU goes to it only when the service thread idles.
      const at19 = (): number => threadNices().filter((n) => n === 19).length;
      const before = at19();
      let niced = false;
      const look = setInterval(() => {
        niced ||= at19() > before;
      }, 50);
      await configs.check();
      clearInterval(tick);
      clearInterval(look);
      longest = Math.max(longest, performance.now() - last); // a stop at the very end shows only here
      expect(niced, 'a thread of this process at nice 19 while the worker ran').toBe(true);
      expect(at19()).toBe(before); // and gone with it
      const took = performance.now() - started;
      expect(configs.domains.get('large')?.root.children.size).toBe(10_000 + Math.ceil(10_000 / 97) + Math.ceil(10_000 / 89));
      expect(logs.lines().map((l) => l.event)).toEqual(['ratelimit_config_reloaded']);
      // In-thread the reload stopped the event loop for all of its 1.5-2.5 s.
      expect(longest, `longest event-loop gap ${longest.toFixed(0)} ms of a ${took.toFixed(0)} ms reload`).toBeLessThan(200);
    } finally {
      configs.stop();
    }
  });

  it('loads one change at a time, and a configuration closed mid-load ends its worker without a rejection', async () => {
    const file = tmp.write('serial.yaml', 'domain: first\n');
    const logs = capture();
    const configs = new RateLimitConfigs([file], opts, createLogger('info', logs.stream));
    await configs.start(3_600_000);
    tmp.write('serial.yaml', bigFile('second', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const first = configs.check();
    await new Promise((r) => setTimeout(r, 20));
    // Written again while the first load runs: not loaded beside it (two loads could land in
    // either order, the older last)...
    tmp.write('serial.yaml', bigFile('third', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 10000));
    const t = performance.now();
    await configs.check();
    expect(performance.now() - t).toBeLessThan(100);
    await first; // read the file as it was when its worker read it: either content
    // ...but by the next check after it, whatever the first one read.
    await configs.check();
    expect([...configs.domains.keys()]).toEqual(['third']);

    tmp.write('serial.yaml', bigFile('fourth', 10_000));
    utimesSync(file, new Date(), new Date(Date.now() + 15000));
    const closing = configs.check();
    await new Promise((r) => setTimeout(r, 50));
    const c = performance.now();
    configs.stop();
    await closing;
    expect(performance.now() - c).toBeLessThan(200);
    expect([...configs.domains.keys()]).toEqual(['third']);
    expect(logs.lines().map((l) => l.event)).toEqual(['ratelimit_config_reloaded', 'ratelimit_config_reloaded']);
    expect(configs.failures).toBe(0);
  });
});
