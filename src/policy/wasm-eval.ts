// Evaluates a loaded policy on input given as JSON text. opa-wasm's evaluate() takes an object,
// JSON.stringify()s it and TextEncoder-encodes it on every call (a new encoder each time); our
// input is already UTF-8 JSON (envoy/input.ts), so it is copied into the wasm memory as is and
// evaluated through the same ABI 1.2 call opa-wasm makes (opa_eval with the input in memory).
// Policies of an older ABI (no opa_eval) go through opa-wasm's own evaluate().
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';

const PAGE = 64 * 1024;
const decoder = new TextDecoder();

/** The fields opa-wasm's LoadedPolicy keeps (src/opa.js), read here, never written. */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface PolicyState {
  readonly minorVersion: number;
  readonly mem: WasmMemory;
  readonly wasmInstance: { readonly exports: Record<string, unknown> };
  readonly dataAddr: number;
  readonly dataHeapPtr: number;
  readonly entrypoints: Readonly<Record<string, number>>;
}

type OpaEval = (reserved: number, entrypoint: number, dataAddr: number, inputAddr: number, inputLen: number, heapPtr: number, format: number) => number;

const evals = new WeakMap<LoadedPolicy, OpaEval | null>();
// A byte view of each policy's memory, made again only when the memory grows (which replaces its
// buffer): two views per evaluation were garbage on every Check.
const views = new WeakMap<LoadedPolicy, Buffer>();

function memoryOf(policy: LoadedPolicy, s: PolicyState): Buffer {
  let view = views.get(policy);
  if (view?.buffer !== s.mem.buffer) {
    view = Buffer.from(s.mem.buffer);
    views.set(policy, view);
  }
  return view;
}

/** opa_eval of this policy when it has the ABI 1.2 fast path (checked once per loaded policy), else null. */
function opaEvalOf(policy: LoadedPolicy): OpaEval | null {
  let f = evals.get(policy);
  if (f === undefined) {
    const p = policy as unknown as Partial<PolicyState>;
    const opaEval = p.wasmInstance?.exports.opa_eval;
    const ok = (p.minorVersion ?? 0) >= 2 && typeof opaEval === 'function' && p.mem?.buffer instanceof ArrayBuffer && typeof p.dataAddr === 'number' && typeof p.dataHeapPtr === 'number' && p.entrypoints !== undefined;
    f = ok ? (opaEval as OpaEval) : null;
    evals.set(policy, f);
  }
  return f;
}

/** The result set of `entrypoint` for the input `json` (UTF-8 JSON text), as opa-wasm's evaluate() returns it. */
export function evaluateJsonText(policy: LoadedPolicy, json: Uint8Array, entrypoint: string): unknown {
  const opaEval = opaEvalOf(policy);
  if (!opaEval) return policy.evaluate(JSON.parse(decoder.decode(json)), entrypoint);
  const s = policy as unknown as PolicyState;
  const id = s.entrypoints[entrypoint];
  if (id === undefined) throw new Error(`entrypoint ${entrypoint} is not valid in this instance`);
  // The input goes right after the data, where opa-wasm puts it; the heap starts after the input.
  const addr = s.dataHeapPtr;
  const short = addr + json.length - s.mem.buffer.byteLength;
  if (short > 0) s.mem.grow(Math.ceil(short / PAGE));
  memoryOf(policy, s).set(json, addr);
  const result = opaEval(0, id, s.dataAddr, addr, json.length, addr + json.length, 0);
  // The result set is NUL-terminated JSON text (the evaluation may have grown the memory).
  const mem = memoryOf(policy, s);
  let end = result;
  while (mem[end] !== 0) end++;
  return JSON.parse(mem.toString('utf8', result, end));
}
