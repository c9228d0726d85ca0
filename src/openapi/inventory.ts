// The endpoint inventory (REC-API-4): every loaded operation with how often it was called and
// refused since start, and the undocumented calls by method and a normalized path label - the
// shadow endpoints clients actually use, next to the zombie operations nobody calls. The label set
// is bounded: identifiers become `{id}`, paths are cut after three segments, and past
// `maxLabels` distinct labels everything else is counted as `other`.
import type { CompiledOperation } from './compile.js';

/** What the inventory records into (the service's metrics; absent: nothing is exported). */
export interface OpenApiMetrics {
  openapiRequest(spec: string, operation: string, outcome: 'valid' | 'refused' | 'reported', reason: string): void;
  openapiUndocumented(spec: string, method: string, path: string): void;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
const PLAIN = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;
const MAX_SEGMENTS = 3;

/** `/users/12345/orders/9f1c...` -> `/users/{id}/orders/...`: literal-looking segments kept, the rest `{id}`. */
export function pathLabel(path: string): string {
  const segments = path.split('/').slice(1);
  const kept = segments.slice(0, MAX_SEGMENTS).map((s) => (s === '' ? '' : PLAIN.test(s) && !/\d{3,}/.test(s) ? s : '{id}'));
  return `/${kept.join('/')}${segments.length > MAX_SEGMENTS ? '/...' : ''}`;
}

interface OperationCounts {
  calls: number;
  valid: number;
  refused: Map<string, number>;
  reported: Map<string, number>;
  lastCalledAt?: number;
}

export interface InventorySnapshot {
  readonly specs: readonly {
    readonly name: string;
    readonly operations: readonly {
      readonly operation_id: string | null;
      readonly method: string;
      readonly path: string;
      readonly tags: readonly string[];
      readonly deprecated: boolean;
      readonly calls: number;
      readonly valid: number;
      readonly refused: Readonly<Record<string, number>>;
      readonly reported: Readonly<Record<string, number>>;
      readonly last_called_at: string | null;
    }[];
    readonly undocumented: readonly { readonly method: string; readonly path: string; readonly calls: number }[];
  }[];
  readonly since: string;
}

const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);

/** The counts since start, kept across config reloads: a reloaded spec keeps the counts of the
 *  operations it still has (by spec name, method and path template); the undocumented labels stay. */
export class InventoryLedger {
  readonly since = new Date();
  readonly operations = new Map<string, OperationCounts>();
  readonly undocumented = new Map<string, Map<string, number>>();
  labels = 0;
}

export class Inventory {
  private readonly ops = new Map<CompiledOperation, OperationCounts>();

  constructor(
    private readonly specs: readonly { readonly name: string; readonly operations: readonly CompiledOperation[] }[],
    private readonly maxLabels: number,
    private readonly metrics?: OpenApiMetrics,
    private readonly now: () => number = Date.now,
    private readonly ledger: InventoryLedger = new InventoryLedger(),
  ) {
    for (const s of specs) {
      for (const op of s.operations) {
        const key = `${s.name} ${op.method} ${op.template}`;
        let counts = ledger.operations.get(key);
        if (!counts) ledger.operations.set(key, (counts = { calls: 0, valid: 0, refused: new Map(), reported: new Map() }));
        this.ops.set(op, counts);
      }
    }
  }

  /** One call of a documented operation and its outcome (reason: why it was refused or would have been). */
  record(spec: string, op: CompiledOperation, outcome: 'valid' | 'refused' | 'reported', reason = 'ok'): void {
    const c = this.ops.get(op);
    if (c) {
      c.calls++;
      c.lastCalledAt = this.now();
      if (outcome === 'valid') c.valid++;
      else bump(outcome === 'refused' ? c.refused : c.reported, reason);
    }
    this.metrics?.openapiRequest(spec, op.id, outcome, reason);
  }

  /** One call no operation describes (no path, or a method the path does not have). */
  undocumented(spec: string, method: string, path: string): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    let label = `${m} ${pathLabel(path)}`;
    const ledger = this.ledger;
    let counts = ledger.undocumented.get(spec);
    if (!counts) {
      counts = new Map();
      ledger.undocumented.set(spec, counts);
    }
    if (!counts.has(label)) {
      if (ledger.labels >= this.maxLabels) label = `${m} other`;
      else if (!counts.has(label)) ledger.labels++;
    }
    bump(counts, label);
    const space = label.indexOf(' ');
    this.metrics?.openapiUndocumented(spec, m, label.slice(space + 1));
  }

  snapshot(): InventorySnapshot {
    const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
    return {
      since: this.ledger.since.toISOString(),
      specs: this.specs.map((s) => ({
        name: s.name,
        operations: s.operations.map((op) => {
          const c = this.ops.get(op)!;
          return {
            operation_id: op.view.operation_id,
            method: op.method,
            path: op.template,
            tags: op.view.tags,
            deprecated: op.view.deprecated,
            calls: c.calls,
            valid: c.valid,
            refused: Object.fromEntries(c.refused),
            reported: Object.fromEntries(c.reported),
            last_called_at: iso(c.lastCalledAt),
          };
        }),
        undocumented: [...(this.ledger.undocumented.get(s.name) ?? new Map<string, number>())].map(([label, calls]) => {
          const space = label.indexOf(' ');
          return { method: label.slice(0, space), path: label.slice(space + 1), calls };
        }),
      })),
    };
  }
}
