// The test ports (test/helpers/ports.ts): outside the kernel's ephemeral range, distinct, and bindable.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';

const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

describe('freePort', () => {
  it('hands out distinct ports below the ephemeral range, each one bindable', async () => {
    const ports = [];
    for (let i = 0; i < 50; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(50);
    for (const p of ports) expect(p).toBeLessThan(ephemeralLow);
    const servers = await Promise.all(ports.map(listen));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it('skips a port something already listens on, and gives consecutive ports when asked', async () => {
    const first = await freePort();
    // Whatever port comes next, take it before freePort is asked again: it must not be returned.
    const taken = await Promise.all([first + 1, first + 2, first + 3].map((p) => listen(p).catch(() => undefined)));
    try {
      const pair = await freePort(2);
      expect([first + 1, first + 2, first + 3]).not.toContain(pair);
      const both = await Promise.all([listen(pair), listen(pair + 1)]);
      await Promise.all(both.map((s) => new Promise((r) => s.close(r))));
    } finally {
      for (const s of taken) if (s) await new Promise((r) => s.close(r));
    }
  });
});
