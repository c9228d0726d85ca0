// application/grpc request bodies as opa-envoy-plugin parses them (envoyauth.getGRPCBody) when it
// is given a descriptor set (`proto-descriptor`; ours: policy.proto_descriptor): the first
// length-prefixed message of raw_body, looked up by the path /<package.Service>/<Method>,
// as proto3 JSON (./protojson.ts).
import type { LoadedConfig } from '../config/loader.js';
import { readReferencedFile } from '../config/files.js';
import { ConfigError, RequestParseError } from '../lib/errors.js';
import { DescriptorSet, ProtoJsonError } from './protojson.js';

export interface GrpcBody {
  /** undefined: not parsed (the plugin's nil), e.g. an unknown service or a compressed message. */
  readonly parsed: unknown;
  readonly truncated: boolean;
}

const NONE: GrpcBody = { parsed: null, truncated: false };

export class GrpcBodies {
  constructor(private readonly set: DescriptorSet) {}

  /** Reads and compiles policy.proto_descriptor, a binary FileDescriptorSet (protoc --include_imports --descriptor_set_out). */
  static async load(loaded: Pick<LoadedConfig, 'file' | 'dir'>, path: string): Promise<GrpcBodies> {
    const keyPath = '/policy/proto_descriptor';
    const bytes = await readReferencedFile(loaded, keyPath, path, { maxBytes: 16 * 1024 * 1024 });
    try {
      return new GrpcBodies(new DescriptorSet(bytes));
    } catch (err) {
      if (!(err instanceof ProtoJsonError)) throw err;
      throw new ConfigError(loaded.file, [{ keyPath, problem: `${path}: ${err.message}` }]);
    }
  }

  /** `parsedPath` is the request's parsed_path. Throws RequestParseError as the plugin answers 400. */
  parse(rawBody: Uint8Array | undefined, parsedPath: readonly string[]): GrpcBody {
    // Envoy sends raw_body only with pack_as_bytes; without it the plugin parses nothing.
    if (!rawBody || rawBody.length === 0) return NONE;
    if (parsedPath.length !== 2) throw new RequestParseError('invalid parsed path');
    if (rawBody.length < 5) throw new RequestParseError('less than 5 bytes');
    if (rawBody[0] !== 0) return NONE; // compressed: the plugin does not decompress
    const size = ((rawBody[1]! << 24) >>> 0) + (rawBody[2]! << 16) + (rawBody[3]! << 8) + rawBody[4]!;
    if (size > rawBody.length - 5) return { parsed: null, truncated: true };
    const method = this.set.inputOf(parsedPath[0]!, parsedPath[1]!);
    if (method === undefined || 'unsupported' in method) return NONE;
    try {
      return { parsed: this.set.toJson(method.type, rawBody.subarray(5, 5 + size)), truncated: false };
    } catch (err) {
      if (err instanceof ProtoJsonError) throw new RequestParseError(`proto: ${err.message}`);
      throw err;
    }
  }
}
