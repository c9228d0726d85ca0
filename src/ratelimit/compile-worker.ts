// Worker thread entry (load-off-thread.ts): reads and compiles the rate-limit files named in
// workerData, then serves the result in parts (lib/module-worker.ts): a domain's root first,
// then its top-level descriptors a batch at a time.
import { serveParts } from '../lib/module-worker.js';
import { workerData } from 'node:worker_threads';
import { loadRateLimitFiles, type CompileOptions, type DomainConfig, type Node } from './config.js';

export interface CompileJob {
  readonly files: readonly string[];
  readonly opts: CompileOptions;
}

/** A domain's root without its children; its wildcards by id (their nodes are among the children). */
export type RootPart = Omit<Node, 'children' | 'wildcards'> & { readonly wildcardIds: readonly string[] };

export type CompilePart =
  | { readonly kind: 'domain'; readonly domain: string; readonly file: string; readonly root: RootPart }
  | { readonly kind: 'children'; readonly entries: readonly (readonly [string, Node])[] };

/** Top-level descriptors per part. */
const BATCH = 250;

function* parts(domains: ReadonlyMap<string, DomainConfig>): Generator<CompilePart> {
  for (const { domain, file, root } of domains.values()) {
    const { children, wildcards, ...rest } = root;
    yield { kind: 'domain', domain, file, root: { ...rest, wildcardIds: wildcards.map((w) => w.id) } };
    let entries: [string, Node][] = [];
    for (const entry of children) {
      entries.push(entry);
      if (entries.length === BATCH) {
        yield { kind: 'children', entries };
        entries = [];
      }
    }
    if (entries.length > 0) yield { kind: 'children', entries };
  }
}

const job = workerData as CompileJob;
serveParts(async () => parts(await loadRateLimitFiles(job.files, job.opts)));
