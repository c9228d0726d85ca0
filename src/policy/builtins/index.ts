// Host built-ins: OPA built-ins that `opa build -t wasm` leaves to the host and that the opa-wasm
// SDK does not implement, passed to loadPolicy as its custom built-ins. One file per family
// (jwt, time, crypto, semver, units, net, uuid, urlquery, strings; time.ts uses civil-time.ts,
// time-zones.ts, go-layout.ts and go-duration.ts); values.ts and encoding.ts are what they share.
// A built-in that fails (bad argument, malformed token, unknown time zone...) makes its expression
// undefined, as in OPA without --strict-builtin-errors (opa-envoy-plugin's default), instead of
// failing the evaluation.
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { cryptoBuiltins } from './crypto.js';
import { jwtBuiltins } from './jwt.js';
import { netBuiltins } from './net.js';
import { semverBuiltins } from './semver.js';
import { stringsBuiltins } from './strings.js';
import { timeBuiltins } from './time.js';
import { unitsBuiltins } from './units.js';
import { urlqueryBuiltins } from './urlquery.js';
import { uuidBuiltins } from './uuid.js';
import { toJsonText, type Json, type Value } from './values.js';

/** Implemented inside the SDK (node_modules/@open-policy-agent/opa-wasm/src/builtins/); these win over ours. */
export const SDK_BUILTINS: readonly string[] = ['json.is_valid', 'regex.split', 'sprintf', 'yaml.is_valid', 'yaml.marshal', 'yaml.unmarshal'];

type Impl = (...args: Json[]) => Value | undefined;
export type HostBuiltin = (...args: Json[]) => ArrayBuffer | undefined;

/** What one evaluation shares: time.now_ns (and io.jwt.decode_verify's default time) is the
 *  same value throughout an evaluation, and uuid.rfc4122 answers the same key the same way. */
export class EvalScope {
  private now: bigint | undefined;
  readonly memo = new Map<string, string>();

  /** Called before each evaluation (evaluation is synchronous: one at a time per process). */
  begin(): void {
    this.now = undefined;
    this.memo.clear();
  }

  readonly nowNs = (): bigint => (this.now ??= BigInt(Date.now()) * 1_000_000n);
}

function families(scope: EvalScope): Record<string, Impl> {
  return {
    ...jwtBuiltins(scope.nowNs),
    ...timeBuiltins(scope.nowNs),
    ...cryptoBuiltins,
    ...netBuiltins,
    ...semverBuiltins,
    ...unitsBuiltins,
    ...urlqueryBuiltins,
    ...stringsBuiltins,
    ...uuidBuiltins(scope.memo),
  };
}

const encoder = new TextEncoder();

/** The custom built-ins for loadPolicy: results go back as JSON text (exact int64s). */
export function hostBuiltins(scope: EvalScope): Record<string, HostBuiltin> {
  const out: Record<string, HostBuiltin> = {};
  for (const [name, impl] of Object.entries(families(scope))) {
    out[name] = (...args) => {
      try {
        const result = impl(...args);
        return result === undefined ? undefined : encoder.encode(toJsonText(result)).buffer;
      } catch {
        return undefined;
      }
    };
  }
  return out;
}

/** Every built-in a policy may need from the host that we can provide. */
export const PROVIDED_BUILTINS: ReadonlySet<string> = new Set([...SDK_BUILTINS, ...Object.keys(families(new EvalScope()))]);

/** The built-ins the compiled policy calls on the host (its exported `builtins` list). */
export function requiredBuiltins(policy: LoadedPolicy): string[] {
  // loadPolicy always keeps the Instance itself (not the instantiated-source wrapper).
  const { wasmInstance, mem } = policy as unknown as {
    wasmInstance: { exports: { builtins: () => number; opa_json_dump: (addr: number) => number } };
    mem: { buffer: ArrayBuffer };
  };
  const { exports } = wasmInstance;
  const addr = exports.opa_json_dump(exports.builtins());
  const bytes = new Uint8Array(mem.buffer);
  let end = addr;
  while (bytes[end] !== 0) end++;
  const list = JSON.parse(new TextDecoder().decode(bytes.subarray(addr, end))) as Record<string, number>;
  return Object.keys(list).sort();
}

/** The required built-ins nobody implements: a policy that needs one cannot be activated. */
export function unsupportedBuiltins(required: Iterable<string>): string[] {
  return [...required].filter((name) => !PROVIDED_BUILTINS.has(name));
}
