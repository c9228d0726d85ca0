// A real redis-server for the rate-limit scenarios, pinned like everything else, and the
// counters that tell how many commands and socket reads each request cost it.
import { Redis } from 'ioredis';
import { freePort } from '../../test/helpers/ports.js';
import { startPinned, waitForPort, type Proc } from './procs.js';

export interface BenchRedis {
  port: number;
  url: string;
  client: Redis;
  proc: Proc;
  /** Commands by name and socket read events since the last reset. */
  counters(): Promise<{ commands: Record<string, number>; reads: number }>;
  reset(): Promise<void>;
  /**
   * Per request, while `during` runs (it returns its request count): the commands clients sent (not
   * those scripts ran, not health-check PINGs), and the keys those commands counted or evaluated
   * (a script's KEYS, an INCRBY's key): whether every bucket of every call reached Redis.
   */
  clientCommands(during: () => Promise<number>): Promise<{ commands: number; keys: number }>;
  stop(): Promise<void>;
}

export async function startBenchRedis(cpus: string): Promise<BenchRedis> {
  const port = await freePort();
  const proc = startPinned('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { cpus });
  await waitForPort(proc, port);
  const client = new Redis(`redis://127.0.0.1:${port}`);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    proc,
    counters: async () => {
      const stats = (await client.info('commandstats')) + (await client.info('stats'));
      const commands: Record<string, number> = {};
      for (const m of stats.matchAll(/^cmdstat_([a-z|_]+):calls=(\d+)/gm)) if (m[1] !== 'info' && m[1] !== 'config|resetstat') commands[m[1]!] = Number(m[2]);
      const reads = Number(/^total_reads_processed:(\d+)/m.exec(stats)?.[1] ?? 'NaN');
      return { commands, reads };
    },
    reset: async () => {
      await client.config('RESETSTAT');
    },
    clientCommands: async (during) => {
      const monitor = await client.monitor();
      let sent = 0;
      let keys = 0;
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        // Commands a script runs are reported with source "lua". PING is a client's health check
        // (envoyproxy/ratelimit's pool sends them), not a command of any call; another server
        // idling beside the one under test may send it too.
        const name = args[0]?.toLowerCase();
        if (source === 'lua' || name === 'monitor' || name === 'ping') return;
        sent++;
        if (name === 'evalsha' || name === 'eval') keys += Number(args[2]);
        else if (name === 'incrby' || name === 'incr') keys++;
      });
      const requests = await during();
      await new Promise((r) => setTimeout(r, 200));
      monitor.disconnect();
      const per = (n: number): number => Math.round((n / Math.max(1, requests)) * 100) / 100;
      return { commands: per(sent), keys: per(keys) };
    },
    stop: async () => {
      client.disconnect();
      await proc.stop();
    },
  };
}
