// Loads Envoy's service protos from the canonical copies shipped on npm (proto/roots.json names
// the package and include roots), with the same options the generated types were made with.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import roots from '../../proto/roots.json' with { type: 'json' };
import type { ProtoGrpcType as AuthProto } from '../gen/external_auth.js';
import type { ProtoGrpcType as RlsProto } from '../gen/rls.js';

export type EnvoyProtos = AuthProto & RlsProto;

export function protoIncludeDirs(): string[] {
  const pkgDir = dirname(createRequire(import.meta.url).resolve(`${roots.package}/package.json`));
  return roots.includeDirs.map((d) => join(pkgDir, d));
}

let cached: EnvoyProtos | undefined;

/** Parsed once per process (startup only: proto parsing is synchronous). */
export function envoyProtos(): EnvoyProtos {
  if (!cached) {
    const o = roots.loaderOptions;
    const options: Options = {
      keepCase: o.keepCase,
      defaults: o.defaults,
      oneofs: o.oneofs,
      // proto-loader takes the String/Number constructors; the JSON names them.
      longs: o.longs === 'String' ? String : Number,
      enums: String,
      includeDirs: protoIncludeDirs(),
    };
    const def = loadSync(roots.files, options);
    cached = loadPackageDefinition(def) as unknown as EnvoyProtos;
  }
  return cached;
}
