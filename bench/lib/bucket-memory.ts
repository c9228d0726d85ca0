// `node --expose-gc --import tsx bench/lib/bucket-memory.ts N`: heap bytes per bucket key of the
// memory store, with every key made as in the service: ShouldRateLimit's descriptor values are
// flat strings (as the request decoder makes them) and the limiter builds the bucket key from
// them. Prints one JSON line.
//
// The limiter's keys are concatenations; V8 keeps a concatenation as a tree of its pieces until
// something flattens it. With keys written as one template literal instead, as this file once
// made them, it published 181 bytes a key where the limiter's keys took 446 (before the store
// flattened them, src/lib/flat-string.ts).
import { compileRateLimitFile } from '../../src/ratelimit/config.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { MemoryStore } from '../../src/ratelimit/memory-store.js';

const n = Number(process.argv[2] ?? '1000000');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const domain = compileRateLimitFile('bench.yaml', 'domain: bench\ndescriptors:\n  - key: user\n    rate_limit: { unit: minute, requests_per_unit: 100 }\n', { algorithm: 'token_bucket' });
const domains = new Map([['bench', domain]]);
/** A descriptor value as the decoder hands it over: a string of its own, read from bytes. */
const value = (i: number): string => Buffer.from(`user-${i}`, 'latin1').toString('latin1');
// Everything a key costs: its entry, its string, and its slot in the table (whose arrays are
// allocated for the bound up front; the bound here is exactly the number of keys).
await new RateLimiter(() => domains, new MemoryStore(10), 'draft', 64).shouldRateLimit('bench', [[{ key: 'user', value: value(-1) }]], 1);
gc();
gc();
const before = process.memoryUsage().heapUsed;
const limiter = new RateLimiter(() => domains, new MemoryStore(n), 'draft', 64);
for (let i = 0; i < n; i++) await limiter.shouldRateLimit('bench', [[{ key: 'user', value: value(i) }]], 1);
gc();
gc();
const after = process.memoryUsage().heapUsed;
// Read the store after measuring, so it is alive (and whole) at the measurement.
const probe = await limiter.shouldRateLimit('bench', [[{ key: 'user', value: value(n - 1) }]], 0);
process.stdout.write(`${JSON.stringify({ keys: n, heapBytes: after - before, bytesPerKey: Math.round((after - before) / n), tableBound: n, remaining: probe.descriptors[0]?.state?.remaining })}\n`);
