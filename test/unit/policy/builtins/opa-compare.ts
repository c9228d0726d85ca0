// Runs one table of built-in calls two ways and returns both results by case name: compiled to
// wasm and evaluated by our engine (native wasm + SDK + host built-ins), and by the real
// `opa eval` (pinned OPA CLI) on the same Rego. One policy and one opa call per table.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBundle, opaBinary } from '../../../helpers/opa.js';
import { parseBundle } from '../../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../../src/policy/engine.js';

/** A Rego expression, evaluated as `[x | x := <expr>]` so that undefined shows as []. */
export interface BuiltinCase {
  readonly name: string;
  readonly expr: string;
}

export type Results = Record<string, unknown>;

function policyOf(cases: readonly BuiltinCase[], helpers: string): string {
  const names = new Set<string>();
  const rows = cases.map((c) => {
    if (names.has(c.name)) throw new Error(`duplicate case name ${c.name}`);
    names.add(c.name);
    return `  ${JSON.stringify(c.name)}: [x | x := ${c.expr}],`;
  });
  return `package t\nimport rego.v1\n${helpers}\nr := {\n${rows.join('\n')}\n}\n`;
}

/** Both results of every case: `ours` from the wasm engine, `opa` from opa eval. */
export async function evaluateBoth(dir: string, name: string, cases: readonly BuiltinCase[], opts: { data?: unknown; helpers?: string } = {}): Promise<{ ours: Results; opa: Results }> {
  let bundlePath: string;
  try {
    bundlePath = buildBundle(dir, name, { rego: policyOf(cases, opts.helpers ?? ''), data: opts.data, entrypoint: 't/r' });
  } catch (err) {
    const out = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`opa build: ${String(out.stdout ?? '')}${String(out.stderr ?? err)}`);
  }
  const engine = new PolicyEngine({ decisionPath: 't/r', initialPages: 16, maxPages: 2048 });
  await engine.activate(await parseBundle(readFileSync(bundlePath)));
  const ours = engine.evaluate({}).result as Results;
  const out = execFileSync(opaBinary(), ['eval', '-f', 'json', '-d', join(dir, `src-${name}`), 'data.t.r'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const opa = (JSON.parse(out) as { result: { expressions: { value: Results }[] }[] }).result[0]!.expressions[0]!.value;
  return { ours, opa };
}
