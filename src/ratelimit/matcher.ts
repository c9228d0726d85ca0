// Descriptor matching with envoyproxy/ratelimit's rules (GetLimit in its config_impl.go), on the
// tree compiled at load: per entry, the exact "key_value" child, else the first wildcard child
// (file order) whose pattern matches "key_value" (each `*` any run of characters), else the
// key-only child; no backtracking; a limit applies only when the node reached is at the
// request's last entry. Also names the counters (share_threshold) and the stats (value_to_metric,
// detailed_metric) as upstream does.
import type { DomainConfig, Node } from './config.js';
import type { Limit } from './limits.js';

export interface Entry {
  readonly key: string;
  readonly value: string;
}

export interface Match {
  readonly limits: readonly Limit[];
  /** Store key prefix: domain and the request's entries (share_threshold: the pattern), escaped so no two descriptors collide. */
  readonly keyBase: string;
  /** The stat key as upstream names it ("domain.key_value.key"; request values with detailed_metric / value_to_metric). */
  readonly statKey: string;
  /** The stat key from the configuration alone (bounded by it): the fallback past the stats key limit. */
  readonly configKey: string;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

const esc = encodeURIComponent;

/** upstream wildcardMatch: `parts` is the pattern split on "*". */
export function wildcardMatch(parts: readonly string[], value: string): boolean {
  if (parts.length === 1) return parts[0] === value;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!value.startsWith(first) || !value.endsWith(last)) return false;
  if (value.length < parts.reduce((n, p) => n + p.length, 0)) return false;
  let rest = value.slice(first.length, value.length - last.length);
  for (const part of parts.slice(1, -1)) {
    const i = rest.indexOf(part);
    if (i < 0) return false;
    rest = rest.slice(i + part.length);
  }
  return true;
}

const trimPrefix = (s: string, p: string): string => (s.startsWith(p) ? s.slice(p.length) : s);

/** encodeURIComponent of the last domain seen: the same few domains on every call. */
let lastDomain = '';
let lastDomainEsc = '';
const escDomain = (d: string): string => {
  if (d !== lastDomain) {
    lastDomainEsc = esc(d);
    lastDomain = d;
  }
  return lastDomainEsc;
};

export function matchDescriptor(domain: DomainConfig, entries: readonly Entry[]): Match | undefined {
  let node: Node = domain.root;
  let share: (string | undefined)[] | undefined; // share_threshold patterns, by entry (rare: made when needed)
  const metric: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const full = `${e.key}_${e.value}`;
    let next = node.children.get(full);
    let wildcard: string | undefined;
    if (!next) {
      for (const w of node.wildcards) {
        if (wildcardMatch(w.parts, full)) {
          next = w.node;
          wildcard = w.id;
          break;
        }
      }
    }
    const byValue = next !== undefined;
    next ??= node.children.get(e.key);
    if (!next) return undefined;
    if (wildcard !== undefined && next.shareThreshold) (share ??= [])[i] = trimPrefix(wildcard, `${e.key}_`);
    const shown = wildcard !== undefined ? (share?.[i] ?? (next.valueToMetric ? e.value : trimPrefix(wildcard, `${e.key}_`))) : byValue || next.valueToMetric ? e.value : '';
    metric.push(shown === '' ? e.key : `${e.key}_${shown}`);
    if (i === entries.length - 1) {
      if (next.limits.length === 0) return undefined;
      const d = domain.domain;
      let statKey = `${d}.${metric.join('.')}`;
      if (next.limits[0]!.detailedMetric) {
        const shared = share;
        statKey = shared?.some((s) => s !== undefined)
          ? d + entries.map((x, j) => (shared[j] !== undefined ? `.${x.key}_${shared[j]}` : `.${x.key}${x.value === '' ? '' : `_${x.value}`}`)).join('')
          : d + entries.map((x) => `.${x.key}_${x.value}`).join('');
      }
      let keyBase = escDomain(d);
      for (let j = 0; j < entries.length; j++) keyBase += `|${esc(entries[j]!.key)}=${esc(share?.[j] ?? entries[j]!.value)}`;
      return next.metadata ? { limits: next.limits, keyBase, statKey, configKey: next.path, metadata: next.metadata } : { limits: next.limits, keyBase, statKey, configKey: next.path };
    }
    if (next.children.size === 0) return undefined;
    node = next;
  }
  return undefined;
}
