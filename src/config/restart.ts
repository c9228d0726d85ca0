// The settings a reload cannot apply: those read once when the listeners start (the gRPC and
// admin listeners, worker processes, which services the gRPC port serves, the logger). A reload
// names each one that changed and keeps its running value; everything else is applied.
import type { Config } from './schema.js';

/** Key paths (JSON Pointer) whose subtree needs a restart to change. */
export const RESTART_ONLY: readonly string[] = ['/server', '/admin/address', '/logging', '/check/enabled', '/ratelimit/enabled'];

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function at(cfg: unknown, pointer: string): unknown {
  let v = cfg;
  for (const k of pointer.split('/').slice(1)) v = isObject(v) ? v[k] : undefined;
  return v;
}

/** Leaf key paths under `pointer` whose values differ (a whole array or an added/removed value is one leaf). */
function diff(a: unknown, b: unknown, pointer: string, out: string[]): void {
  if (isObject(a) && isObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) diff(a[k], b[k], `${pointer}/${k}`, out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(pointer);
}

/** The restart-only keys whose value in `next` differs from the running config, sorted. */
export function restartOnlyChanges(running: Readonly<Config>, next: Readonly<Config>): string[] {
  const out: string[] = [];
  for (const p of RESTART_ONLY) diff(at(running, p), at(next, p), p, out);
  return out.sort();
}

/** `next` with every restart-only key set to its running value: what a reload applies. */
export function withRunningListeners(running: Readonly<Config>, next: Readonly<Config>): Readonly<Config> {
  return Object.freeze({
    ...next,
    server: running.server,
    logging: running.logging,
    admin: Object.freeze({ ...next.admin, address: running.admin.address }),
    check: Object.freeze({ ...next.check, enabled: running.check.enabled }),
    ratelimit: Object.freeze({ ...next.ratelimit, enabled: running.ratelimit.enabled }),
  });
}
