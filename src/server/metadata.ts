// gRPC call metadata as both service adapters read it.
import type { Metadata } from '@grpc/grpc-js';

/** The metadata as a lower-case map of single string values (for trace context extraction); binary values are left out. */
export function metadataMap(md: Metadata): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out.set(k.toLowerCase(), v);
  return out;
}

/** The call's traceparent metadata (the first string value), if any. */
export function grpcTraceparent(md: Metadata): string | undefined {
  const v = md.get('traceparent')[0];
  return typeof v === 'string' ? v : undefined;
}
