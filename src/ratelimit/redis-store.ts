// Token buckets (GCRA) and fixed windows in Redis: one Lua script evaluates every bucket of a
// request atomically, on Redis server time (instances with skewed clocks agree), and consumes
// only when the request is admitted. One EVALSHA per call (redis-script.ts: the calls of one turn
// of the event loop share one socket write); inside it, TIME, one MGET for every bucket and one
// SET (value and expiry together) per bucket it changes - each command a script runs is CPU on
// the Redis every instance shares (envoyproxy/ratelimit: INCRBY and EXPIRE per descriptor). In a Redis
// Cluster the buckets are grouped by hash slot, one script per slot: first a check of every
// slot, then the consuming pass (a race between the two can only refuse, never over-admit).
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { BucketRequest, BucketState, EvaluateMode, RateLimitStore, WindowCount } from './limits.js';
import type { Limit } from './limits.js';
import { bulk, RedisScript } from './redis-script.js';

// ARGV[1]: 'check' | 'consume' | 'each' (every bucket by itself: a refused fixed window still
// counts, as envoyproxy/ratelimit's INCRBY); ARGV[2]: '' (Redis time), or the time in ms from a test clock;
// then per bucket: algorithm ('tb'|'fw'), limit, window ms, burst, hits, shadow ('1'|'0').
// Returns per bucket: allowed (1/0), remaining, reset ms, retry-after ms, used (count before it).
const SCRIPT = `
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local mode = ARGV[1]
local n = #KEYS
-- every stored value in one command (a missing key reads as false)
local stored = redis.call('MGET', unpack(KEYS))
local out = {}
local writes = {} -- key, value, ms to live: flat, no table per write
local function write(key, value, ttl)
  writes[#writes + 1] = key
  writes[#writes + 1] = value
  writes[#writes + 1] = ttl
end
local pending = {} -- a key named twice in one request is spent twice: later buckets see earlier ones
local admitted = true
for i = 1, n do
  local key = KEYS[i]
  local b = 2 + (i - 1) * 6
  local algo = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local window = tonumber(ARGV[b + 3])
  local burst = tonumber(ARGV[b + 4])
  local hits = tonumber(ARGV[b + 5])
  local shadow = ARGV[b + 6] == '1'
  local ok, remaining, reset, retry
  local used = 0
  if limit == 0 then
    -- admits nothing (as envoyproxy/ratelimit): over limit until the window ends; stores nothing
    reset = math.floor(now / window) * window + window - now
    remaining = 0
    if hits == 0 then ok = 1; retry = 0 else ok = 0; retry = reset end
  elseif algo == 'tb' then
    local interval = window / limit
    local tat = tonumber(pending[key] or stored[i] or now)
    if tat < now then tat = now end
    used = burst - math.min(burst, math.max(0, math.floor((now - tat) / interval + burst)))
    local newtat = tat + hits * interval
    local allowat = newtat - burst * interval
    if allowat <= now then
      ok = 1
      remaining = math.floor((now - allowat) / interval)
      reset = math.ceil(newtat - now)
      retry = 0
      if hits > 0 then
        pending[key] = newtat
        -- every digit of the double: a rounded TAT moves reset and remaining by a ms or a token
        write(key, string.format('%.17g', newtat), math.ceil(newtat) + 1000 - now)
      end
    else
      ok = 0
      remaining = math.max(0, math.floor((now - (tat - burst * interval)) / interval))
      reset = math.ceil(tat - now)
      retry = math.ceil(allowat - now)
    end
  else
    local start = math.floor(now / window) * window
    reset = start + window - now
    -- A counter names its window ('count:start'): Redis expires a key only after its time, so in
    -- the first ms of a window the last window's key can still be there.
    local count = pending[key]
    if count == nil then
      count = 0
      local v = stored[i]
      if v then
        local c, w = string.match(v, '^(%d+):(%d+)$')
        if c == nil then count = tonumber(v) or 0 -- a bare count, from an older version
        elseif tonumber(w) == start then count = tonumber(c) end
      end
    end
    used = count
    if count + hits <= limit then
      ok = 1
      remaining = limit - count - hits
      retry = 0
    else
      ok = 0
      retry = reset
      -- 'each': a refused request still counts (as upstream's INCRBY), and nothing is left
      if mode == 'each' then remaining = 0 else remaining = math.max(0, limit - count) end
    end
    if hits > 0 and (ok == 1 or mode == 'each') then
      pending[key] = count + hits
      write(key, string.format('%.0f:%.0f', count + hits, start), reset)
    end
  end
  if ok == 0 and not shadow then admitted = false end
  local o = (i - 1) * 5
  out[o + 1] = ok
  out[o + 2] = remaining
  out[o + 3] = reset
  out[o + 4] = retry
  out[o + 5] = used
end
if (admitted and mode == 'consume') or mode == 'each' then
  -- value and expiry in one command; the expiry only collects garbage: values say when they
  -- belong. It runs on Redis's clock, so a test clock (ARGV[2]) sets none.
  for j = 1, #writes, 3 do
    if ARGV[2] == '' then
      redis.call('SET', writes[j], writes[j + 1], 'PX', writes[j + 2])
    else
      redis.call('SET', writes[j], writes[j + 1])
    end
  end
end
return out
`;

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

const ONE = bulk('1');
const ZERO = bulk('0');
/** ARGV[1] and ARGV[2] (Redis time) per mode. */
const MODE_ARGS = { check: bulk('check') + bulk(''), consume: bulk('consume') + bulk(''), each: bulk('each') + bulk('') } as const;

/** A limit's algorithm, limit, window ms and burst, encoded once per limit (dropped with it: a reload's or an override's limits too). */
const encodedLimits = new WeakMap<Limit, string>();
function limitArgs(l: Limit): string {
  let s = encodedLimits.get(l);
  if (s === undefined) {
    s = bulk(l.algorithm === 'token_bucket' ? 'tb' : 'fw') + bulk(String(l.requestsPerUnit)) + bulk(String(l.windowSeconds * 1000)) + bulk(String(l.burst));
    encodedLimits.set(l, s);
  }
  return s;
}

type Client = Redis | Cluster;
type ScriptClient = Client & {
  envoyAuthzRateLimit(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  envoyAuthzCount(numKeys: number, key: string, windowMs: number): Promise<[number, number]>;
};

function isCluster(c: Client): c is Cluster {
  return (c as Cluster).isCluster === true;
}

export class RedisStore implements RateLimitStore {
  readonly kind: string;
  private readonly client: ScriptClient;
  /** The rate-limit script on a standalone connection (a Cluster client routes by slot: ioredis' script command). */
  private readonly script: RedisScript | undefined;

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
    client.defineCommand('envoyAuthzRateLimit', { lua: SCRIPT });
    client.defineCommand('envoyAuthzCount', { lua: COUNT_SCRIPT });
    this.client = client as ScriptClient;
    this.kind = isCluster(client) ? 'redis-cluster' : 'redis';
    this.script = isCluster(client) ? undefined : new RedisScript(client, SCRIPT);
  }

  /** numkeys, keys, then ARGV, as RESP (redis-script.ts): a limit's parameters are encoded once per limit. */
  private encode(mode: 'check' | 'consume' | 'each', buckets: readonly BucketRequest[]): string {
    const n = buckets.length;
    let out = bulk(String(n));
    for (let i = 0; i < n; i++) out += bulk(this.prefix + buckets[i]!.key);
    out += this.opts.now ? bulk(mode) + bulk(String(Math.floor(this.opts.now()))) : MODE_ARGS[mode];
    for (let i = 0; i < n; i++) {
      const b = buckets[i]!;
      const l = b.limit;
      out += limitArgs(l) + (b.hits === 1 ? ONE : bulk(String(b.hits))) + (l.shadow ? ONE : ZERO);
    }
    return out;
  }

  private argv(mode: 'check' | 'consume' | 'each', buckets: readonly BucketRequest[]): string[] {
    const n = buckets.length;
    const argv: string[] = [];
    for (let i = 0; i < n; i++) argv.push(this.prefix + buckets[i]!.key);
    argv.push(mode, this.opts.now ? String(Math.floor(this.opts.now())) : '');
    for (let i = 0; i < n; i++) {
      const b = buckets[i]!;
      const l = b.limit;
      argv.push(l.algorithm === 'token_bucket' ? 'tb' : 'fw', String(l.requestsPerUnit), String(l.windowSeconds * 1000), String(l.burst), String(b.hits), l.shadow ? '1' : '0');
    }
    return argv;
  }

  private async run(mode: 'check' | 'consume' | 'each', buckets: readonly BucketRequest[]): Promise<BucketState[]> {
    const n = buckets.length;
    // numkeys + keys + mode and time + 6 per bucket
    const raw = (await (this.script ? this.script.run(3 + 7 * n, this.encode(mode, buckets)) : this.client.envoyAuthzRateLimit(n, ...this.argv(mode, buckets)))) as number[];
    const out = new Array<BucketState>(n);
    for (let i = 0; i < n; i++) {
      out[i] = { allowed: raw[i * 5] === 1, remaining: Number(raw[i * 5 + 1]), resetMs: Number(raw[i * 5 + 2]), retryAfterMs: Number(raw[i * 5 + 3]), used: Number(raw[i * 5 + 4]) };
    }
    return out;
  }

  async evaluate(buckets: readonly BucketRequest[], mode: EvaluateMode = 'all'): Promise<BucketState[]> {
    if (buckets.length === 0) return [];
    const single = mode === 'each' ? 'each' : 'consume';
    if (!isCluster(this.client)) return this.run(single, buckets);
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
