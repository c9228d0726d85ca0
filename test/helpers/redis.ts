// A real redis-server on a free loopback port, for the duration of a test file.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { replyDroppingProxy, type ReplyDroppingProxy } from './redis-proxy.js';

export interface TestRedis {
  url: string;
  port: number;
  /** The redis-server process (SIGSTOP / SIGCONT it to stall Redis without closing its sockets). */
  pid: number;
  client: Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined); // refused while the server starts: retried below
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`redis-server did not start: ${String(err)} (is the redis-server package installed?)`);
      client.disconnect();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    port,
    pid: child.pid!,
    client,
    stop: async () => {
      client.disconnect();
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A real Redis Cluster: `n` cluster-enabled redis-server processes joined by redis-cli.
 * `proxied`: each node behind a reply-dropping proxy (redis-proxy.ts) that it announces to clients
 * as its address, so a cluster client's every connection goes through them; `nodes` stay the
 * nodes' own addresses.
 */
export async function startRedisCluster(n = 3, opts: { proxied?: boolean } = {}): Promise<{ nodes: string[]; proxies: ReplyDroppingProxy[]; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'envoy-authz-cluster-'));
  const children: ChildProcess[] = [];
  const nodes: string[] = [];
  const proxies: ReplyDroppingProxy[] = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    // The cluster bus is a second listener (port + 10000 unless given): a free port of its own.
    const bus = await freePort();
    const announce: string[] = [];
    if (opts.proxied) {
      const proxy = await replyDroppingProxy(port);
      proxies.push(proxy);
      announce.push('--cluster-announce-ip', '127.0.0.1', '--cluster-announce-port', String(proxy.port));
    }
    children.push(
      spawn('redis-server', ['--port', String(port), '--cluster-port', String(bus), ...announce, '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }),
    );
    nodes.push(`127.0.0.1:${port}`);
  }
  const until = Date.now() + 10_000;
  for (const node of nodes) {
    const c = new Redis(`redis://${node}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    for (;;) {
      try {
        await c.connect();
        await c.ping();
        break;
      } catch {
        c.disconnect();
        if (Date.now() > until) throw new Error('cluster node did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    c.disconnect();
  }
  // Not execFileSync: the proxies run on this event loop, and redis-cli talks to the nodes through them.
  await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
  // Wait until every node agrees the cluster is up.
  for (const node of nodes) {
    const c = new Redis(`redis://${node}`, { maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    while (!(await c.cluster('INFO')).includes('cluster_state:ok')) {
      if (Date.now() > until + 10_000) throw new Error('cluster did not converge');
      await new Promise((r) => setTimeout(r, 100));
    }
    c.disconnect();
  }
  return {
    nodes,
    proxies,
    stop: async () => {
      for (const p of proxies) p.close();
      await Promise.all(children.map((ch) => new Promise<void>((r) => (ch.exitCode !== null ? r() : (ch.once('exit', () => r()), ch.kill('SIGTERM'))))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server on a given port (to bring a stopped one back). */
export function startRedisOn(port: number): { stop(): Promise<void> } {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Commands Redis ran since its last CONFIG RESETSTAT, by name (INFO itself left out). */
export async function commandsSinceReset(admin: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) if (m[1] !== 'info') out[m[1]!] = Number(m[2]);
  return out;
}
