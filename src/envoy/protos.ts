// Loads Envoy's service protos from the canonical copies shipped on npm (proto/roots.json names
// the package and include roots), with the same options the generated types were made with.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
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

let root: protobuf.Root | undefined;

/** The same protos as reflection types (field kinds, oneofs, maps), for translators that walk a
 *  decoded message by its descriptor. Parsed once per process, on first use (startup). */
export function envoyReflection(): protobuf.Root {
  if (!root) {
    const dirs = protoIncludeDirs();
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => {
      if (isAbsolute(target)) return target;
      for (const d of dirs) if (existsSync(join(d, target))) return join(d, target);
      return target;
    };
    r.loadSync(roots.files, { keepCase: roots.loaderOptions.keepCase });
    r.resolveAll();
    root = r;
  }
  return root;
}

/** A message type's field numbers by field name (for the writers that encode it by hand). */
export function fieldIds(type: protobuf.Type): Readonly<Record<string, number>> {
  const out = Object.create(null) as Record<string, number>;
  for (const f of type.fieldsArray) out[f.name] = f.id;
  return out;
}
