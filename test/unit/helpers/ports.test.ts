// The test ports (test/helpers/ports.ts): outside the kernel's ephemeral range, a slice per worker,
// distinct, and bindable.
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ephemeralLow, freePort, slice } from '../../helpers/ports.js';
import { tempDir } from '../../helpers/tmp.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}
const close = (s: Server): Promise<unknown> => new Promise((r) => s.close(r));

describe('freePort', () => {
  const tmp = tempDir();

  it('hands out distinct ports below the ephemeral range, each one bindable', async () => {
    const ports = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(50);
    for (const p of ports) expect(p).toBeLessThan(ephemeralLow());
    for (const s of await Promise.all(ports.map(listen))) await close(s);
  });

  it('skips a pair whose second port something listens on', async () => {
    const first = await freePort();
    // The next pair tried starts at first + 1 (the slice is walked in order): take its second port.
    const blocker = await listen(first + 2);
    try {
      const pair = await freePort(2);
      expect(pair).not.toBe(first + 1);
      for (const s of await Promise.all([listen(pair), listen(pair + 1)])) await close(s);
    } finally {
      await close(blocker);
    }
  });

  it('gives every worker its own slice, all of them below the ephemeral range', () => {
    const low = 32_768;
    const slices = Array.from({ length: 16 }, (_, i) => slice(i, low, 16));
    for (const [i, s] of slices.entries()) {
      expect(s.size).toBeGreaterThanOrEqual(64);
      if (i > 0) expect(s.first).toBe(slices[i - 1]!.first + slices[i - 1]!.size);
    }
    expect(slices[0]!.first).toBe(10_000);
    expect(slices[15]!.first + slices[15]!.size).toBeLessThanOrEqual(low);
  });

  it('reads the range from the kernel, and refuses one that leaves no room below it', () => {
    expect(ephemeralLow(tmp.write('range', '32768\t60999\n'))).toBe(32_768);
    expect(() => ephemeralLow(tmp.write('low', '1024\t65535\n'))).toThrow(/ephemeral ports start at 1024/);
    expect(ephemeralLow(`${tmp.dir}/missing`)).toBe(49_152);
  });
});
