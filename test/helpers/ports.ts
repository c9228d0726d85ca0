// Loopback ports for the processes tests and benchmarks start (Envoy, Redis, envoy-authz, peers).
//
// A port from listen(0) is in the kernel's ephemeral range, which the kernel also hands out as
// the local port of every outgoing connection. Between our closing the probe and the child
// binding, a connection of any other test could take it, and the child failed with EADDRINUSE
// (CI, stop 32). So ports come from below that range, where the kernel never picks, and each
// vitest worker has its own slice of it, so two test files running at once never pick the same.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

const LOW = 10_000;
/** Slices: at least one per vitest worker (it runs at most one per CPU). */
const SLICES = Math.max(16, availableParallelism());
/** Smallest slice worth having: a test file may start a few dozen processes. */
const MIN_SLICE = 64;

/** The first port of the kernel's ephemeral range. */
export function ephemeralLow(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): number {
  let text: string;
  try {
    text = readFileSync(rangeFile, 'utf8');
  } catch {
    // Not Linux: macOS and the BSDs pick from 49152 up (IANA's dynamic range).
    return 49_152;
  }
  const low = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isInteger(low) || low < LOW + SLICES * MIN_SLICE) {
    throw new Error(`${rangeFile} says the ephemeral ports start at ${text.trim()}: test ports need ${LOW}-${LOW + SLICES * MIN_SLICE} outside it`);
  }
  return low;
}

/** The ports [first, first + size) of slice `index` (0-based) below `low`. */
export function slice(index: number, low: number, slices = SLICES): { first: number; size: number } {
  const size = Math.floor((low - LOW) / slices);
  return { first: LOW + (index % slices) * size, size };
}

// VITEST_POOL_ID is 1..workers, distinct among running workers; outside vitest (bench) the pid picks.
const poolId = Number(process.env.VITEST_POOL_ID);
const mine = slice(Number.isInteger(poolId) && poolId > 0 ? poolId - 1 : process.pid, ephemeralLow());
// A random start: the slot's previous test file may have left a process still closing.
let next = Math.floor(Math.random() * mine.size);
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** `count` consecutive free loopback ports (the first is returned), none handed out before by this
 *  process (until the slice has gone round once: a long bench run reuses the ports of servers it stopped). */
export async function freePort(count = 1): Promise<number> {
  for (let tried = 0; tried < 2 * mine.size; tried++) {
    if (tried === mine.size) handedOut.clear();
    const first = mine.first + (next % (mine.size - count + 1));
    next += 1;
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((p) => handedOut.has(p))) continue;
    let free = true;
    for (const p of ports) if (!(free = await bindable(p))) break;
    if (!free) continue;
    for (const p of ports) handedOut.add(p);
    return first;
  }
  throw new Error(`no ${count} free consecutive loopback ports left in ${mine.first}-${mine.first + mine.size - 1}`);
}
