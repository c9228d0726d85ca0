// `node --expose-gc --import tsx bench/lib/bucket-memory.ts N`: heap bytes per bucket key of the
// memory store, with keys shaped as the limiter makes them. Prints one JSON line.
import { MemoryStore } from '../../src/ratelimit/memory-store.js';
import type { Limit } from '../../src/ratelimit/limits.js';

const n = Number(process.argv[2] ?? '1000000');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const limit: Limit = { requestsPerUnit: 100, windowSeconds: 60, reportedUnit: 'MINUTE', burst: 100, algorithm: 'token_bucket', shadow: false, unlimited: false, replaces: [], detailedMetric: false };
// Everything a key costs: its entry, its string, and its slot in the table (whose arrays are
// allocated for the bound up front; the bound here is exactly the number of keys).
await new MemoryStore(10).evaluate([{ key: 'warm', limit, hits: 1 }]);
gc();
gc();
const before = process.memoryUsage().heapUsed;
const store = new MemoryStore(n);
for (let i = 0; i < n; i++) await store.evaluate([{ key: `rl:bench|user=user-${i}|0:token_bucket:60`, limit, hits: 1 }]);
gc();
gc();
const after = process.memoryUsage().heapUsed;
// Read the store after measuring, so it is alive (and whole) at the measurement.
const probe = await store.evaluate([{ key: `rl:bench|user=user-${n - 1}|0:token_bucket:60`, limit, hits: 0 }]);
process.stdout.write(`${JSON.stringify({ keys: n, heapBytes: after - before, bytesPerKey: Math.round((after - before) / n), tableBound: n, remaining: probe[0]?.remaining })}\n`);
