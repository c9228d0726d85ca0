// Descriptor matching with envoyproxy/ratelimit's rules, on the tree compiled at load:
// per entry, the exact "key_value" child, else the first wildcard child (file order) whose
// prefix matches, else the key-only child; no backtracking; a limit applies only when the
// node reached is at the request's last entry.
import type { DomainConfig, Node } from './config.js';
import type { Limit } from './limits.js';

export interface Entry {
  readonly key: string;
  readonly value: string;
}

export interface Match {
  readonly limits: readonly Limit[];
  /** Store key prefix: domain and the request's entries, escaped so no two descriptors collide. */
  readonly keyBase: string;
}

const esc = encodeURIComponent;

function child(node: Node, e: Entry): Node | undefined {
  const exact = node.children.get(`${e.key}_${e.value}`);
  if (exact) return exact;
  for (const w of node.wildcards) if (w.key === e.key && e.value.startsWith(w.prefix)) return w.node;
  return node.children.get(e.key);
}

export function matchDescriptor(domain: DomainConfig, entries: readonly Entry[]): Match | undefined {
  let node: Node = domain.root;
  for (const [i, e] of entries.entries()) {
    const next = child(node, e);
    if (!next) return undefined;
    if (i === entries.length - 1) {
      if (next.limits.length === 0) return undefined;
      return { limits: next.limits, keyBase: `${esc(domain.domain)}|${entries.map((x) => `${esc(x.key)}=${esc(x.value)}`).join('|')}` };
    }
    node = next;
  }
  return undefined;
}
