// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function, heaviest first, and
// by package (node_modules/<pkg>, our src/<dir>, node: internals, native/GC).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  /** The node each sample hit, in order, and the us since the previous sample (the first: since startTime). */
  samples?: number[];
  timeDeltas?: number[];
}

/** A stretch of the monotonic clock, in us: V8 stamps a profile's samples on CLOCK_MONOTONIC, as process.hrtime does. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** Now on the clock a .cpuprofile's timestamps use (any process on this machine). */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Hits per node: every sample (nodes' hitCount) or only those stamped inside `window`. A profile
 * of a whole process also holds its start-up (module loading, compiling, reading files), which
 * is not what a load run measures.
 */
export function hitsByNode(p: CpuProfile, window?: ProfileWindow): Map<number, number> {
  const hits = new Map<number, number>();
  if (!window) {
    for (const n of p.nodes) if (n.hitCount) hits.set(n.id, n.hitCount);
    return hits;
  }
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let t = p.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (t < window.fromUs || t > window.toUs) continue;
    const id = samples[i]!;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return hits;
}

export interface ProfileSummary {
  file: string;
  seconds: number;
  /** Only the samples of a load run were counted (summarizeProfile's window), not the whole process. */
  loadRunOnly?: boolean;
  /** Share of samples (percent) by function, top entries. */
  functions: { name: string; where: string; percent: number }[];
  /** Share of samples (percent) by area. */
  areas: { area: string; percent: number }[];
}

export function areaOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ours = /\/dist\/src\/([^/]+)\//.exec(url);
  if (ours) return `src/${ours[1]!}`;
  if (url.startsWith('node:')) return 'node: internals';
  return url.replace(/^.*\//, '');
}

/** `node_modules/pkg/file.js:12` or `dist/src/x.js:3`: short, and the same for CPU and heap profiles. */
export function whereOf(url: string, lineNumber: number): string {
  return url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '')}:${lineNumber + 1}` : '';
}

/** `window`: only the samples taken inside it (the load run), and `seconds` is its length. */
export function summarizeProfile(file: string, top = 15, window?: ProfileWindow): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const hitsOf = hitsByNode(p, window);
  let total = 0;
  for (const h of hitsOf.values()) total += h;
  total ||= 1;
  const byFn = new Map<string, { name: string; where: string; hits: number }>();
  const byArea = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = hitsOf.get(n.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    const where = whereOf(url, lineNumber);
    const key = `${name}@${where}`;
    const e = byFn.get(key) ?? { name, where, hits: 0 };
    e.hits += hits;
    byFn.set(key, e);
    const area = areaOf(url, name);
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
  }
  const pct = (h: number): number => Math.round((h / total) * 1000) / 10;
  return {
    file,
    ...(window ? { loadRunOnly: true } : {}),
    seconds: Math.round(((window ? Math.min(window.toUs, p.endTime) - Math.max(window.fromUs, p.startTime) : p.endTime - p.startTime)) / 1e5) / 10,
    functions: [...byFn.values()].sort((a, b) => b.hits - a.hits).slice(0, top).map((e) => ({ name: e.name, where: e.where, percent: pct(e.hits) })),
    areas: [...byArea.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([area, hits]) => ({ area, percent: pct(hits) })),
  };
}

/** The newest profile in `dir`. */
export function latestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  return files.length ? join(dir, files[files.length - 1]!) : undefined;
}
