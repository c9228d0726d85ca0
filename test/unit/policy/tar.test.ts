// The bundle archive reader against gzip bombs: refused at once with a clear error, inflated off
// the event loop (its delay is measured while a bomb loads), memory bounded by the cap.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BUNDLE_LIMITS, BundleError, parseBundle } from '../../../src/policy/bundle.js';
import { readTarGz } from '../../../src/policy/tar.js';
import { tempDir } from '../../helpers/tmp.js';

const MiB = 1024 * 1024;

/** A ustar header with a correct checksum; `size` is what it declares, whatever follows. */
function header(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

// Gzip members concatenate: a MiB of zeros compresses to about 1 KiB, so a 300 MiB bomb costs
// 300 copies of one small buffer to build.
const ZEROS_MIB = gzipSync(Buffer.alloc(MiB), { level: 9 });
const zeros = (mib: number): Buffer[] => Array.from({ length: mib }, () => ZEROS_MIB);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `load` while measuring the event loop's delay (also of a load that blocks at once) and the process's RSS. */
async function measured<T>(load: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; maxDelayMs: number; rssGrowth: number; ms: number }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  const rss0 = process.memoryUsage.rss();
  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 5);
  h.enable();
  await sleep(30);
  const t0 = performance.now();
  const [result] = await Promise.allSettled([load()]);
  const ms = performance.now() - t0;
  await sleep(30);
  h.disable();
  clearInterval(sampler);
  return { result: result, maxDelayMs: h.max / 1e6, rssGrowth: Math.max(rssMax, process.memoryUsage.rss()) - rss0, ms };
}

const reason = (r: PromiseSettledResult<unknown>): string => (r.status === 'rejected' ? String((r.reason as Error).message) : 'fulfilled');

describe('readTarGz', () => {
  const tmp = tempDir();

  it('reads what tar writes: nested and long names, empty files, leading ./', async () => {
    const src = join(tmp.dir, 'src');
    const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/data.json`;
    mkdirSync(join(src, long, '..'), { recursive: true });
    writeFileSync(join(src, long), '{"a":1}');
    writeFileSync(join(src, 'policy.wasm'), Buffer.alloc(70_000, 7));
    writeFileSync(join(src, 'empty'), '');
    execFileSync('tar', ['--format=gnu', '-czf', join(tmp.dir, 'b.tar.gz'), '-C', src, '.']);
    const files = new Map((await readTarGz(readFileSync(join(tmp.dir, 'b.tar.gz')), BUNDLE_LIMITS)).map((f) => [f.path, f.content]));
    expect([...files.keys()].sort()).toEqual([`./${long}`, './empty', './policy.wasm']);
    expect(files.get('./policy.wasm')!.equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(files.get(`./${long}`)!.toString()).toBe('{"a":1}');
    expect(files.get('./empty')!.length).toBe(0);
  });

  it.each(['pax', 'gnu', 'ustar'])('reads a path longer than the 100-byte name field, written as %s', async (format) => {
    const src = join(tmp.dir, `long-${format}`);
    // ustar can only split at a slash (prefix/name); PAX and GNU also take one long component.
    const names = [`${'p'.repeat(70)}/${'q'.repeat(60)}/data.json`, ...(format === 'ustar' ? [] : [`${'r'.repeat(130)}.rego`])];
    for (const name of names) {
      mkdirSync(join(src, name, '..'), { recursive: true });
      writeFileSync(join(src, name), name);
    }
    const out = join(tmp.dir, `long-${format}.tar.gz`);
    execFileSync('tar', [`--format=${format}`, '-czf', out, '-C', src, ...names]);
    const files = await readTarGz(readFileSync(out), BUNDLE_LIMITS);
    expect(files.map((f) => [f.path, f.content.toString()])).toEqual(names.map((n) => [n, n]));
  });

  it('refuses a file larger than maxFileBytes at its header', async () => {
    const archive = gzipSync(Buffer.concat([header('small', 10), Buffer.alloc(512), header('big', 5000), Buffer.alloc(5120)]));
    await expect(readTarGz(archive, { ...BUNDLE_LIMITS, maxFileBytes: 4096 })).rejects.toThrow('file "big" of 5000 bytes is larger than 4096 bytes');
    expect(await readTarGz(archive, { ...BUNDLE_LIMITS, maxFileBytes: 5000 })).toHaveLength(2);
  });

  it('refuses a header whose checksum does not add up', async () => {
    const good = Buffer.concat([header('a', 1), Buffer.alloc(512), header('b', 1), Buffer.alloc(512)]);
    expect(await readTarGz(gzipSync(good), BUNDLE_LIMITS)).toHaveLength(2);
    const bad = Buffer.from(good);
    bad[1024 + 1] = 0x41; // a name byte of the second header
    await expect(readTarGz(gzipSync(bad), BUNDLE_LIMITS)).rejects.toThrow(/^not a tar archive \(bad header checksum\)$/);
  });

  it('refuses a member that declares more than the budget at its header: 300 MiB inflate to nothing', async () => {
    const bomb = Buffer.concat([gzipSync(header('policy.wasm', 300 * MiB)), ...zeros(300)]);
    expect(bomb.length).toBeLessThan(MiB);
    const m = await measured(() => readTarGz(bomb, BUNDLE_LIMITS));
    expect(reason(m.result)).toBe(`archive larger than ${256 * MiB} bytes decompressed (member "policy.wasm" of ${300 * MiB} bytes)`);
    expect(m.ms).toBeLessThan(1000);
    expect(m.rssGrowth).toBeLessThan(32 * MiB);
  });

  it('stops inflating once the total passes the cap: 300 files of 1 MiB against a 16 MiB budget', async () => {
    const bomb = Buffer.concat(Array.from({ length: 300 }, (_, i) => [gzipSync(header(`f${i}`, MiB)), ZEROS_MIB]).flat());
    const m = await measured(() => readTarGz(bomb, { ...BUNDLE_LIMITS, maxUncompressedBytes: 16 * MiB }));
    expect(reason(m.result)).toMatch(/^archive larger than 16777216 bytes decompressed \(member "f15" of 1048576 bytes\)$/);
    expect(m.rssGrowth).toBeLessThan(64 * MiB);
  });

  it('inflates a bomb off the event loop: the loop keeps turning while 128 MiB are decompressed', async () => {
    // Within the default budget, so all of it is inflated (and held) before the bundle is refused.
    const bomb = Buffer.concat([gzipSync(header('data.json', 128 * MiB)), ...zeros(128), gzipSync(Buffer.alloc(1024))]);
    const m = await measured(() => parseBundle(bomb));
    expect(reason(m.result)).toBe('bundle has no policy.wasm: build it with opa build -t wasm');
    // gunzipSync blocked the loop for the whole inflate; streamed, the loop only copies chunks.
    expect(m.maxDelayMs).toBeLessThan(Math.max(100, m.ms / 4));
    expect(m.rssGrowth).toBeLessThan(128 * MiB + 64 * MiB); // the member, held once
  });

  it('ends at the end-of-archive marker: 300 MiB of zeros are an empty archive, read at once', async () => {
    const m = await measured(() => readTarGz(Buffer.concat(zeros(300)), BUNDLE_LIMITS));
    expect(m.result).toEqual({ status: 'fulfilled', value: [] });
    expect(m.ms).toBeLessThan(1000);
    await expect(parseBundle(Buffer.concat(zeros(300)))).rejects.toThrow(new BundleError('bundle has no policy.wasm: build it with opa build -t wasm'));
  });

  it.each([
    ['not gzip', Buffer.from('this is not a bundle'), /^not gzip \(/],
    ['not tar', gzipSync(Buffer.alloc(4096, 0xff)), /^not a tar archive \(bad header checksum\)$/],
    ['truncated', gzipSync(Buffer.concat([header('policy.wasm', 4096), Buffer.alloc(100)])), /^truncated tar member$/],
    ['shorter than a header', gzipSync(Buffer.alloc(100, 0x61)), /^truncated tar member$/],
    ['a long name longer than a path', gzipSync(Buffer.concat([header('././@LongLink', 5000, 'L'), Buffer.alloc(5120, 0x61), header('x', 1), Buffer.alloc(512)])), /^member name of 5000 bytes$/],
    ['an unsafe name', gzipSync(Buffer.concat([header('../x', 1), Buffer.alloc(512)])), /^unsafe member name "..\/x"$/],
  ])('refuses %s with a clear error', async (_, archive, message) => {
    await expect(readTarGz(archive, BUNDLE_LIMITS)).rejects.toThrow(message);
  });

  it('refuses more files than maxFiles and a compressed archive over its cap', async () => {
    const three = gzipSync(Buffer.concat([0, 1, 2].flatMap((i) => [header(`f${i}`, 1), Buffer.alloc(512)])));
    await expect(readTarGz(three, { ...BUNDLE_LIMITS, maxFiles: 2 })).rejects.toThrow('more than 2 files');
    await expect(readTarGz(three, { ...BUNDLE_LIMITS, maxCompressedBytes: 10 })).rejects.toThrow('archive larger than 10 bytes');
  });
});
