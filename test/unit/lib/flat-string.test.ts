// Long-lived table keys in one piece: the value is unchanged, and the memory store's bucket keys,
// built by the limiter from several pieces, cost what docs/operations.md says (under 200 bytes a
// key, table slot included), measured by the script that publishes the figure.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flat } from '../../../src/lib/flat-string.js';
import { ROOT } from '../../helpers/service.js';

describe('flat', () => {
  it('returns the same value', () => {
    const parts = ['rl:', 'bench', '|user=', 'ü-漢-😀', '|0:token_bucket:60'];
    let s = '';
    for (const p of parts) s += p;
    expect(flat(s)).toBe(parts.join(''));
    expect(flat('')).toBe('');
    expect(flat(`${s}${s}`)).toBe(parts.join('').repeat(2));
  });

  it('keeps a memory-store bucket key, as the limiter makes it, under 200 bytes', () => {
    // 20,000 keys through RateLimiter.shouldRateLimit on a MemoryStore bounded at 20,000. Without
    // flat() the store's keys kept their pieces: 450-480 bytes a key.
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(ROOT, 'bench', 'lib', 'bucket-memory.ts'), '20000'], { cwd: ROOT }).toString();
    const r = JSON.parse(out) as { keys: number; bytesPerKey: number; remaining: number };
    expect(r.keys).toBe(20000);
    expect(r.remaining).toBe(99);
    expect(r.bytesPerKey).toBeGreaterThan(50);
    expect(r.bytesPerKey).toBeLessThanOrEqual(200);
  }, 60_000);
});
