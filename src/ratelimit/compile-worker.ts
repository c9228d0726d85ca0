// Worker thread entry (load-off-thread.ts): reads and compiles the rate-limit files named in
// workerData, then serves the result in parts (lib/module-worker.ts). Each domain's tree goes
// node by node, depth first, a batch of nodes per part whatever the tree's shape (10,000
// descriptors under one key take as many parts as 10,000 at the top level).
import { batchesOf, serveParts } from '../lib/module-worker.js';
import { workerData } from 'node:worker_threads';
import { loadRateLimitFiles, type CompileOptions, type DomainConfig, type Node, type Wildcard } from './config.js';

export interface CompileJob {
  readonly files: readonly string[];
  readonly opts: CompileOptions;
}

/** A node as the service thread will keep it, its children and wildcards still empty (filled in there). */
export type OpenNode = Node & { readonly children: Map<string, Node>; readonly wildcards: Wildcard[] };

/**
 * [parent's index in the domain's depth-first order, or -1 for the root; its id under the parent;
 * the node; the ids of its wildcards (their nodes are among its children)].
 */
export type NodeRecord = readonly [number, string, OpenNode, readonly string[]];

export type CompilePart =
  | { readonly kind: 'domain'; readonly domain: string; readonly file: string }
  | { readonly kind: 'nodes'; readonly nodes: readonly NodeRecord[] };

/** Nodes per part. */
const BATCH = 250;

/**
 * The node without its subtree, in config.ts's shape (the service thread uses the deserialized
 * object as it is: no copy). A leaf keeps the tree's shared empty map and list, which one part
 * carries once.
 */
function open(n: Node): OpenNode {
  const { limits, children, wildcards, path, shareThreshold, valueToMetric, metadata } = n;
  return {
    limits,
    children: children.size > 0 ? new Map() : (children as Map<string, Node>),
    wildcards: wildcards.length > 0 ? [] : (wildcards as Wildcard[]),
    path,
    shareThreshold,
    valueToMetric,
    ...(metadata !== undefined ? { metadata } : {}),
  };
}

/** A tree's nodes depth first, children in their order; each node's index is its place in that order. */
function* records(root: Node): Generator<NodeRecord> {
  let index = 0;
  const stack: [number, string, Node][] = [[-1, '', root]];
  while (stack.length > 0) {
    const [parent, id, node] = stack.pop()!;
    const self = index++;
    yield [parent, id, open(node), node.wildcards.map((w) => w.id)];
    const kids = [...node.children];
    for (let i = kids.length - 1; i >= 0; i--) stack.push([self, kids[i]![0], kids[i]![1]]);
  }
}

function* parts(domains: ReadonlyMap<string, DomainConfig>): Generator<CompilePart> {
  for (const { domain, file, root } of domains.values()) {
    yield { kind: 'domain', domain, file };
    for (const nodes of batchesOf(records(root), BATCH)) yield { kind: 'nodes', nodes };
  }
}

const job = workerData as CompileJob;
serveParts(async () => parts(await loadRateLimitFiles(job.files, job.opts)));
