// Loopback ports for the processes tests and benchmarks start (Envoy, Redis, envoy-authz, peers).
//
// A port from listen(0) is in the kernel's ephemeral range, which the kernel also hands out as
// the local port of every outgoing connection. Between our closing the probe and the child
// binding, a connection of any other test could take it, and the child failed with EADDRINUSE
// (CI, stop 32). So ports come from below that range, where the kernel never picks, and each
// vitest worker has its own slice of it, so two test files running at once never pick the same.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOW = 10_000;
const SLICES = 16;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOW + SLICES * 64) return low;
  } catch {
    // not Linux: the IANA dynamic range starts at 49152
  }
  return 32_768;
}

const sliceSize = Math.floor((ephemeralLow() - LOW) / SLICES);
// VITEST_POOL_ID is 1..workers and stays with a worker slot; outside vitest (bench) the pid picks.
const slice = (Number(process.env.VITEST_POOL_ID) || process.pid) % SLICES;
const base = LOW + slice * sliceSize;
// A random start: the slot's previous test file may have left a process still closing.
let next = Math.floor(Math.random() * sliceSize);
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
  for (let tried = 0; tried < 2 * sliceSize; tried++) {
    if (tried === sliceSize) handedOut.clear();
    const first = base + (next % (sliceSize - count + 1));
    next += 1;
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((p) => handedOut.has(p))) continue;
    let free = true;
    for (const p of ports) if (!(free = await bindable(p))) break;
    if (!free) continue;
    for (const p of ports) handedOut.add(p);
    return first;
  }
  throw new Error(`no ${count} free consecutive loopback ports left in ${base}-${base + sliceSize - 1}`);
}
