// The Lua script that evaluates token buckets (GCRA) and fixed windows in Redis, its arguments and
// its reply. One run evaluates one or more rate-limit requests in order, atomically: on a
// standalone Redis the requests of one turn of the event loop share a run (redis-batch.ts), in a
// Cluster a run carries one request's buckets of one hash slot.
//
// Requests of one run are evaluated as if each had its own run at the same instant: a request sees
// what the requests before it spent, and consumes only when admitted. Each key is read once (one
// MGET for the run) and written once (its last value, with its expiry, in one SET): Redis runs
// every command a script sends on the CPU that all instances share, and the per-run costs - the
// EVALSHA, TIME, the MGET, the limits' parameters (sent once per run, not once per bucket) - are
// spread over the requests of the run.
import type { BucketRequest, BucketState, Limit } from './limits.js';

/** `consume`: all buckets or none; `each`: every bucket by itself (envoyproxy/ratelimit's counting); `check`: nothing is written. */
export type ScriptMode = 'check' | 'consume' | 'each';

export interface ScriptRequest {
  readonly mode: ScriptMode;
  readonly buckets: readonly BucketRequest[];
}

// KEYS: every bucket's key, request by request.
// ARGV[1]: '' (Redis time) or the time in ms from a test clock; ARGV[2]: L, how many limits follow;
// then per limit: algorithm ('tb'|'fw'), limit, window ms, burst, shadow ('1'|'0');
// then per request: mode, its number of buckets n, and per bucket: its limit (1..L), hits.
// Returns per bucket, request by request: allowed (1/0), remaining, reset ms, retry-after ms,
// used (count before it).
export const BUCKET_SCRIPT = `
local floor, ceil, max, min, tonumber, format = math.floor, math.ceil, math.max, math.min, tonumber, string.format
local clock = ARGV[1]
local now
if clock ~= '' then
  now = tonumber(clock)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
end
local L = tonumber(ARGV[2])
local lalgo, llimit, lwindow, lburst, lshadow, linterval = {}, {}, {}, {}, {}, {}
local a = 3
for j = 1, L do
  lalgo[j] = ARGV[a]
  llimit[j] = tonumber(ARGV[a + 1])
  lwindow[j] = tonumber(ARGV[a + 2])
  lburst[j] = tonumber(ARGV[a + 3])
  lshadow[j] = ARGV[a + 4] == '1'
  if llimit[j] > 0 then linterval[j] = lwindow[j] / llimit[j] end
  a = a + 5
end
-- state: every key's value as stored (false when missing), read once; a request's admitted
-- writes replace it for the requests after it
local state = {}
local unique = {}
local nu = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  if state[key] == nil then
    state[key] = false
    nu = nu + 1
    unique[nu] = key
  end
end
if nu > 0 then
  local got = redis.call('MGET', unpack(unique))
  for i = 1, nu do state[unique[i]] = got[i] end
end
local ttls = {} -- key -> ms to live of its last write
local dirty = {} -- keys written, in order of their first write
local nd = 0
local out = {}
local o = 0
local k = 0
local nargv = #ARGV
while a < nargv do
  local mode = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local pending = {} -- a key named twice in one request is spent twice: later buckets see earlier ones
  local writes = {} -- key, value, ms to live: flat, no table per write
  local nw = 0
  local admitted = true
  for i = 1, n do
    local key = KEYS[k + i]
    local j = tonumber(ARGV[a])
    local hits = tonumber(ARGV[a + 1])
    a = a + 2
    local limit, window, burst = llimit[j], lwindow[j], lburst[j]
    local ok, remaining, reset, retry
    local used = 0
    if limit == 0 then
      -- admits nothing (as envoyproxy/ratelimit): over limit until the window ends; stores nothing
      reset = floor(now / window) * window + window - now
      remaining = 0
      if hits == 0 then ok = 1; retry = 0 else ok = 0; retry = reset end
    elseif lalgo[j] == 'tb' then
      local interval = linterval[j]
      -- a value that is not a number (not ours) reads as missing, as in the memory store
      local tat = tonumber(pending[key] or state[key]) or now
      if tat < now then tat = now end
      used = burst - min(burst, max(0, floor((now - tat) / interval + burst)))
      local newtat = tat + hits * interval
      local allowat = newtat - burst * interval
      if allowat <= now then
        ok = 1
        remaining = floor((now - allowat) / interval)
        reset = ceil(newtat - now)
        retry = 0
        if hits > 0 then
          pending[key] = newtat
          -- every digit of the double: a rounded TAT moves reset and remaining by a ms or a token
          writes[nw + 1] = key
          writes[nw + 2] = format('%.17g', newtat)
          writes[nw + 3] = ceil(newtat) + 1000 - now
          nw = nw + 3
        end
      else
        ok = 0
        remaining = max(0, floor((now - (tat - burst * interval)) / interval))
        reset = ceil(tat - now)
        retry = ceil(allowat - now)
      end
    else
      local start = floor(now / window) * window
      reset = start + window - now
      -- A counter names its window ('count:start'): Redis expires a key only after its time, so in
      -- the first ms of a window the last window's key can still be there.
      local count = pending[key]
      if count == nil then
        count = 0
        local v = state[key]
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
        if mode == 'each' then remaining = 0 else remaining = max(0, limit - count) end
      end
      if hits > 0 and (ok == 1 or mode == 'each') then
        pending[key] = count + hits
        writes[nw + 1] = key
        writes[nw + 2] = format('%.0f:%.0f', count + hits, start)
        writes[nw + 3] = reset
        nw = nw + 3
      end
    end
    if ok == 0 and not lshadow[j] then admitted = false end
    out[o + 1] = ok
    out[o + 2] = remaining
    out[o + 3] = reset
    out[o + 4] = retry
    out[o + 5] = used
    o = o + 5
  end
  k = k + n
  if (admitted and mode == 'consume') or mode == 'each' then
    for w = 1, nw, 3 do
      local key = writes[w]
      if ttls[key] == nil then
        nd = nd + 1
        dirty[nd] = key
      end
      state[key] = writes[w + 1]
      ttls[key] = writes[w + 2]
    end
  end
end
-- value and expiry in one command; the expiry only collects garbage: values say when they
-- belong. It runs on Redis's clock, so a test clock sets none.
for w = 1, nd do
  local key = dirty[w]
  if clock == '' then
    redis.call('SET', key, state[key], 'PX', ttls[key])
  else
    redis.call('SET', key, state[key])
  end
end
return out
`;

/** A limit's five script arguments, made once per limit (dropped with it: a reload's or an override's limits too). */
const limitArgs = new WeakMap<Limit, readonly string[]>();
function argsOf(l: Limit): readonly string[] {
  let a = limitArgs.get(l);
  if (a === undefined) {
    a = [l.algorithm === 'token_bucket' ? 'tb' : 'fw', String(l.requestsPerUnit), String(l.windowSeconds * 1000), String(l.burst), l.shadow ? '1' : '0'];
    limitArgs.set(l, a);
  }
  return a;
}

/** Small integers as strings (limit numbers, bucket counts, hits), made once. */
const SMALL = Array.from({ length: 256 }, (_, i) => String(i));
const str = (n: number): string => SMALL[n] ?? String(n);

/**
 * EVALSHA's arguments after the SHA for `requests`: numkeys, KEYS, ARGV. `clock`: '' for Redis
 * time. `prefix` goes before every key.
 */
export function scriptArgs(requests: readonly ScriptRequest[], prefix: string, clock: string): string[] {
  const keys: string[] = [];
  const limits = new Map<Limit, number>();
  const tail: string[] = [];
  const limitList: string[] = [];
  for (const r of requests) {
    const n = r.buckets.length;
    tail.push(r.mode, str(n));
    for (let i = 0; i < n; i++) {
      const b = r.buckets[i]!;
      keys.push(prefix + b.key);
      let j = limits.get(b.limit);
      if (j === undefined) {
        j = limits.size + 1;
        limits.set(b.limit, j);
        limitList.push(...argsOf(b.limit));
      }
      tail.push(str(j), str(b.hits));
    }
  }
  const out = [str(keys.length)];
  for (const k of keys) out.push(k);
  out.push(clock, str(limits.size));
  for (const s of limitList) out.push(s);
  for (const s of tail) out.push(s);
  return out;
}

/** The states of `n` buckets from the script's reply, starting at bucket `first` of the run. */
export function readStates(reply: readonly unknown[], first: number, n: number): BucketState[] {
  const out = new Array<BucketState>(n);
  for (let i = 0; i < n; i++) {
    const o = (first + i) * 5;
    out[i] = { allowed: reply[o] === 1, remaining: Number(reply[o + 1]), resetMs: Number(reply[o + 2]), retryAfterMs: Number(reply[o + 3]), used: Number(reply[o + 4]) };
  }
  return out;
}
