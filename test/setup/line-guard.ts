// Loaded before every test file (vitest setupFiles): meters what this worker writes to stdout and
// stderr, and fails the file if any line our code wrote during it - there, in a captured logger or
// from a spawned service (test/helpers/line-guard.ts) - is longer than 4 KB.
import { afterAll, expect } from 'vitest';
import { MAX_SUITE_LINE_BYTES, lineMeter, longestLine, resetLongestLine } from '../helpers/line-guard.js';

resetLongestLine();
for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
  const meter = lineMeter(`test worker ${name}`);
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    meter.write(chunk);
    return write(chunk, ...rest);
  });
}

afterAll(() => {
  const l = longestLine();
  expect(l.bytes, `a ${l.bytes}-byte line from ${l.source}: ${l.head}…`).toBeLessThanOrEqual(MAX_SUITE_LINE_BYTES);
});
