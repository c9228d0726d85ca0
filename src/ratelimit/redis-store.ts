// Token buckets (GCRA) and fixed windows in Redis: one Lua script (bucket-script.ts) evaluates
// every bucket of a request atomically, on Redis server time (instances with skewed clocks agree),
// and consumes only when the request is admitted. On a standalone Redis the requests of one turn
// of the event loop share one run of it (redis-batch.ts): one EVALSHA, with TIME, one MGET and one
// SET per key it changes - each command a script runs is CPU on the Redis every instance shares
// (envoyproxy/ratelimit: INCRBY and EXPIRE per descriptor). In a Redis Cluster the buckets are
// grouped by hash slot, one script per slot: first a check of every slot, then the consuming pass
// (a race between the two can only refuse, never over-admit).
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { BucketRequest, BucketState, EvaluateMode, RateLimitStore, WindowCount } from './limits.js';
import { BUCKET_SCRIPT, readStates, scriptArgs, type ScriptMode } from './bucket-script.js';
import { ScriptBatcher } from './redis-batch.js';
import { RedisScript } from './redis-script.js';

// A counter whose window starts with its first hit: one round trip, atomic (a key left without a
// time to live, whatever the cause, gets one). ARGV[1]: window ms. Returns count, ms left.
const COUNT_SCRIPT = `
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if c == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}
`;

type Client = Redis | Cluster;
type ScriptClient = Client & {
  envoyAuthzRateLimit(...args: string[]): Promise<unknown[]>;
  envoyAuthzCount(numKeys: number, key: string, windowMs: number): Promise<[number, number]>;
};

function isCluster(c: Client): c is Cluster {
  return (c as Cluster).isCluster === true;
}

export class RedisStore implements RateLimitStore {
  readonly kind: string;
  private readonly client: ScriptClient;
  /** The requests of a turn, one script run, on a standalone connection (a Cluster client routes by slot: ioredis' script command). */
  private readonly batcher: ScriptBatcher | undefined;

  private readonly prefix: string;

  /**
   * `opts.keyPrefix`: put before every key (redis.key_prefix), so that deployments sharing one
   * Redis keep their buckets apart. `opts.now`: tests only (the parity test drives both stores on
   * one clock). Without it, as in production, the script reads Redis time, so that instances with
   * skewed clocks agree.
   */
  constructor(
    client: Client,
    private readonly opts: { readonly keyPrefix?: string; readonly now?: () => number } = {},
  ) {
    this.prefix = opts.keyPrefix ?? '';
    client.defineCommand('envoyAuthzRateLimit', { lua: BUCKET_SCRIPT });
    client.defineCommand('envoyAuthzCount', { lua: COUNT_SCRIPT });
    this.client = client as ScriptClient;
    this.kind = isCluster(client) ? 'redis-cluster' : 'redis';
    this.batcher = isCluster(client) ? undefined : new ScriptBatcher(new RedisScript(client, BUCKET_SCRIPT), this.prefix, this.clock);
  }

  private readonly clock = (): string => (this.opts.now ? String(Math.floor(this.opts.now())) : '');

  private async run(mode: ScriptMode, buckets: readonly BucketRequest[]): Promise<BucketState[]> {
    const reply = await this.client.envoyAuthzRateLimit(...scriptArgs([{ mode, buckets }], this.prefix, this.clock()));
    return readStates(reply, 0, buckets.length);
  }

  evaluate(buckets: readonly BucketRequest[], mode: EvaluateMode = 'all'): Promise<BucketState[]> {
    // A standalone Redis: the batch's own promise, with no async layer of ours around it (each is
    // a promise and a suspended frame a call). Whatever is thrown comes out as a rejection with
    // that value, as from the async function this was.
    try {
      if (buckets.length === 0) return Promise.resolve([]);
      const single = mode === 'each' ? 'each' : 'consume';
      if (this.batcher) return this.batcher.evaluate(single, buckets);
      return this.evaluateCluster(buckets, mode, single);
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the value thrown, unchanged
      return Promise.reject(err);
    }
  }

  /** A Cluster: a run per slot (the script's keys must share one), all-or-nothing across them by a check first. */
  private async evaluateCluster(buckets: readonly BucketRequest[], mode: EvaluateMode, single: ScriptMode): Promise<BucketState[]> {
    const bySlot = new Map<number, number[]>();
    buckets.forEach((b, i) => {
      const slot = calculateSlot(this.prefix + b.key);
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), i]);
    });
    const groups = [...bySlot.values()];
    const pick = (g: number[]): BucketRequest[] => g.map((i) => buckets[i]!);
    const merge = (results: BucketState[][]): BucketState[] => {
      const out: BucketState[] = new Array<BucketState>(buckets.length);
      groups.forEach((g, gi) => g.forEach((i, k) => (out[i] = results[gi]![k]!)));
      return out;
    };
    if (groups.length === 1) return this.run(single, buckets);
    // Every bucket by itself: one pass per slot, no check first.
    if (mode === 'each') return merge(await Promise.all(groups.map((g) => this.run('each', pick(g)))));
    const checked = merge(await Promise.all(groups.map((g) => this.run('check', pick(g)))));
    if (checked.some((s, i) => !s.allowed && !buckets[i]!.limit.shadow)) return checked;
    return merge(await Promise.all(groups.map((g) => this.run('consume', pick(g)))));
  }

  async count(key: string, windowS: number): Promise<WindowCount> {
    const [count, resetMs] = await this.client.envoyAuthzCount(1, this.prefix + key, windowS * 1000);
    return { count: Number(count), resetMs: Number(resetMs) };
  }

  close(): Promise<void> {
    this.client.disconnect();
    return Promise.resolve();
  }
}
