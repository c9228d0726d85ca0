// The rate-limit requests of one turn of the event loop, evaluated by one run of the bucket script
// (bucket-script.ts) on a standalone Redis: one EVALSHA, TIME and MGET for all of them, each key
// written once. The gRPC transport starts every handler from setImmediate, so the calls that one
// turn's socket reads brought are made in one check phase; they leave at the next, as one command
// in one socket write (before this, one EVALSHA each, corked into one write). Every request still
// waits for exactly one round trip and is evaluated atomically, in the order the calls were made;
// what changes is Redis's CPU per call (bench/NOTES.md item 22).
//
// A run is bounded (MAX_REQUESTS, MAX_KEYS, MAX_KEY_CHARS): a script holds Redis for all its
// requests, Lua's unpack() takes a few thousand values at most, and the command is one string
// (V8's longest is 2^29 characters: keys carry descriptor values, up to the gRPC message size
// three times over once percent-encoded). A request alone in a run may go past them (as it did
// before batching: ratelimit.max_descriptors and the message size bound it).
import type { BucketRequest, BucketState } from './limits.js';
import { readStates, scriptArgs, type ScriptMode, type ScriptRequest } from './bucket-script.js';
import type { RedisScript } from './redis-script.js';

const MAX_REQUESTS = 64;
const MAX_KEYS = 512;
const MAX_KEY_CHARS = 1 << 20;

interface Waiter {
  resolve(states: BucketState[]): void;
  reject(err: unknown): void;
}

interface Run {
  readonly clock: string;
  readonly requests: ScriptRequest[];
  readonly waiters: Waiter[];
  /** Buckets in the run (the script returns five numbers for each). */
  keys: number;
  chars: number;
}

export class ScriptBatcher {
  /** The run requests join now; `closed` ones are full (or on another test clock) and leave with it. */
  private open: Run | undefined;
  private closed: Run[] = [];

  /**
   * `clock`: '' (Redis time) in production; a test clock's time in ms, per call (a run has one
   * time: a call on another starts a new run).
   */
  constructor(
    private readonly script: RedisScript,
    private readonly prefix: string,
    private readonly clock: () => string,
  ) {}

  evaluate(mode: ScriptMode, buckets: readonly BucketRequest[]): Promise<BucketState[]> {
    const clock = this.clock();
    let chars = 0;
    for (let i = 0; i < buckets.length; i++) chars += buckets[i]!.key.length;
    let run = this.open;
    if (run !== undefined && (run.clock !== clock || run.requests.length >= MAX_REQUESTS || run.keys + buckets.length > MAX_KEYS || run.chars + chars > MAX_KEY_CHARS)) {
      this.closed.push(run);
      run = undefined;
    }
    if (run === undefined) {
      if (this.open === undefined) setImmediate(this.flush);
      run = this.open = { clock, requests: [], waiters: [], keys: 0, chars: 0 };
    }
    const r = run;
    r.requests.push({ mode, buckets });
    r.keys += buckets.length;
    r.chars += chars;
    return new Promise<BucketState[]>((resolve, reject) => r.waiters.push({ resolve, reject }));
  }

  private readonly flush = (): void => {
    const runs = this.closed;
    if (this.open !== undefined) runs.push(this.open);
    this.open = undefined;
    this.closed = [];
    if (runs.length === 1) this.send(runs[0]!);
    else this.script.corked(() => runs.forEach((run) => this.send(run)));
  };

  private send(run: Run): void {
    let sent: Promise<unknown>;
    try {
      sent = this.script.run(scriptArgs(run.requests, this.prefix, run.clock));
    } catch (err) {
      // Thrown here (setImmediate), it would end the process and leave the run's calls waiting.
      for (const w of run.waiters) w.reject(err);
      return;
    }
    sent.then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== run.keys * 5) {
          const err = new Error(`rate-limit script: unexpected reply (${Array.isArray(reply) ? `${reply.length} values` : typeof reply})`);
          for (const w of run.waiters) w.reject(err);
          return;
        }
        let first = 0;
        for (let i = 0; i < run.requests.length; i++) {
          const n = run.requests[i]!.buckets.length;
          run.waiters[i]!.resolve(readStates(reply, first, n));
          first += n;
        }
      },
      (err: unknown) => {
        for (const w of run.waiters) w.reject(err);
      },
    );
  }
}
