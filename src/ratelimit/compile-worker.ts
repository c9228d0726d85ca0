// Worker thread entry (load-off-thread.ts): reads and compiles the rate-limit files named in
// workerData, then serves the result in parts (lib/module-worker.ts). Each domain's tree goes
// node by node, depth first, a batch of nodes per part whatever the tree's shape (10,000
// descriptors under one key take as many parts as 10,000 at the top level).
import { serveParts } from '../lib/module-worker.js';
import { workerData } from 'node:worker_threads';
import { loadRateLimitFiles, type CompileOptions, type DomainConfig, type Node } from './config.js';

export interface CompileJob {
  readonly files: readonly string[];
  readonly opts: CompileOptions;
}

/** A node without its children; its wildcards by id (their nodes are among its children). */
export type NodeFields = Omit<Node, 'children' | 'wildcards'> & { readonly wildcardIds: readonly string[] };

/** [parent's index in the domain's depth-first order, or -1 for the root; its id under the parent; the node]. */
export type NodeRecord = readonly [number, string, NodeFields];

export type CompilePart =
  | { readonly kind: 'domain'; readonly domain: string; readonly file: string }
  | { readonly kind: 'nodes'; readonly nodes: readonly NodeRecord[] };

/** Nodes per part. */
const BATCH = 250;

function fields(n: Node): NodeFields {
  const { limits, path, shareThreshold, valueToMetric, metadata, wildcards } = n;
  return { limits, path, shareThreshold, valueToMetric, ...(metadata !== undefined ? { metadata } : {}), wildcardIds: wildcards.map((w) => w.id) };
}

function* parts(domains: ReadonlyMap<string, DomainConfig>): Generator<CompilePart> {
  for (const { domain, file, root } of domains.values()) {
    yield { kind: 'domain', domain, file };
    let batch: NodeRecord[] = [];
    let index = 0;
    // Depth first, children in their order; each node's index is its place in that order.
    const stack: [number, string, Node][] = [[-1, '', root]];
    while (stack.length > 0) {
      const [parent, id, node] = stack.pop()!;
      const self = index++;
      batch.push([parent, id, fields(node)]);
      if (batch.length === BATCH) {
        yield { kind: 'nodes', nodes: batch };
        batch = [];
      }
      const kids = [...node.children];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([self, kids[i]![0], kids[i]![1]]);
    }
    if (batch.length > 0) yield { kind: 'nodes', nodes: batch };
  }
}

const job = workerData as CompileJob;
serveParts(async () => parts(await loadRateLimitFiles(job.files, job.opts)));
