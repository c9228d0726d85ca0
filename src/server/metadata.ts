// gRPC call metadata as the Check adapter reads it.
import type { Metadata } from '@grpc/grpc-js';

/** The call's traceparent metadata (the first string value), if any. */
export function grpcTraceparent(md: Metadata): string | undefined {
  const v = md.get('traceparent')[0];
  return typeof v === 'string' ? v : undefined;
}
