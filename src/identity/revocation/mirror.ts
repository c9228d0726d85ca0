// The local mirror of a deny list: what every lookup reads, synchronously. CIDR rules are also
// kept as one BlockList, rebuilt when they change (rare, admin-driven).
import type { BlockList } from 'node:net';
import { blockListOf, contains, parseCidr, type Cidr } from '../../lib/cidr.js';
import type { DenyEntry, DenyKind } from './entry.js';

const isLive = (e: DenyEntry, nowS: number): boolean => e.expiresAt === undefined || e.expiresAt > nowS;

export class Mirror {
  private entries = new Map<string, DenyEntry>();
  /** Every CIDR rule, expired or not: a first, cheap test before the live rules are checked. */
  private cidrs: BlockList = blockListOf([]);
  // No rule, no lookup: BlockList.check makes a native SocketAddress per call (1.4% of a Check's CPU).
  private anyCidr = false;

  static key(kind: DenyKind, value: string): string {
    return `${kind}:${value}`;
  }

  /** Entries held, expired or not (the sweep is what removes expired ones). */
  get size(): number {
    return this.entries.size;
  }

  replaceAll(entries: Iterable<DenyEntry>): void {
    this.entries = new Map([...entries].map((e) => [Mirror.key(e.kind, e.value), e]));
    this.rebuildCidrs();
  }

  put(e: DenyEntry): void {
    this.entries.set(Mirror.key(e.kind, e.value), e);
    if (e.kind === 'cidr') this.rebuildCidrs();
  }

  delete(kind: DenyKind, value: string): boolean {
    const had = this.entries.delete(Mirror.key(kind, value));
    if (had && kind === 'cidr') this.rebuildCidrs();
    return had;
  }

  private cidrRules(nowS?: number): Cidr[] {
    const out: Cidr[] = [];
    for (const e of this.entries.values()) {
      if (e.kind !== 'cidr' || (nowS !== undefined && !isLive(e, nowS))) continue;
      const c = parseCidr(e.value);
      if (typeof c !== 'string') out.push(c);
    }
    return out;
  }

  private rebuildCidrs(): void {
    const rules = this.cidrRules();
    this.cidrs = blockListOf(rules);
    this.anyCidr = rules.length > 0;
  }

  get(kind: DenyKind, value: string): DenyEntry | undefined {
    return this.entries.get(Mirror.key(kind, value));
  }

  /** Every entry held, expired or not. */
  all(): DenyEntry[] {
    return [...this.entries.values()];
  }

  has(kind: DenyKind, value: string, nowS: number): boolean {
    const e = this.entries.get(Mirror.key(kind, value));
    return e !== undefined && isLive(e, nowS);
  }

  sourceBlocked(address: string, nowS: number): boolean {
    if (!this.anyCidr || !contains(this.cidrs, address)) return false;
    // A matching rule may have expired: confirm against the live rules only.
    return contains(blockListOf(this.cidrRules(nowS)), address);
  }

  list(nowS: number): DenyEntry[] {
    return [...this.entries.values()].filter((e) => isLive(e, nowS));
  }

  /** Removes expired entries; returns their keys. */
  prune(nowS: number): string[] {
    const gone: string[] = [];
    for (const [k, e] of this.entries) {
      if (!isLive(e, nowS)) {
        this.entries.delete(k);
        gone.push(k);
      }
    }
    if (gone.some((k) => k.startsWith('cidr:'))) this.rebuildCidrs();
    return gone;
  }
}
