// application/grpc bodies beyond the recorded fixtures (plugin-fidelity.test.ts): what a hostile
// client can send, and what an operator gets wrong in policy.proto_descriptor.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GrpcBodies } from '../../../src/envoy/grpc-body.js';
import { DescriptorSet, ProtoJsonError } from '../../../src/envoy/protojson.js';
import { ConfigError, RequestParseError } from '../../../src/lib/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const PB = join(import.meta.dirname, '..', '..', 'fixtures', 'opa-envoy-plugin', 'grpc', 'orders.pb');
const set = new DescriptorSet(readFileSync(PB));
const REQ = '.fixture.orders.v1.CreateOrderRequest';

function frame(msg: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}
const lenField = (num: number, b: Buffer): Buffer => Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

describe('gRPC request bodies (policy.proto_descriptor)', () => {
  const tmp = tempDir();
  it('a Struct nested past the depth limit is a parse error, not a stack overflow', () => {
    // meta (18) = Struct{fields: {"a": Value{struct_value: Struct{...}}}} nested 200 deep.
    let s: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 200; i++) s = lenField(1, Buffer.concat([lenField(1, Buffer.from('a')), lenField(2, lenField(5, s))]));
    expect(() => set.toJson(REQ, lenField(18, s))).toThrow(/recursion depth/);
    const bodies = new GrpcBodies(set);
    expect(() => bodies.parse(frame(lenField(18, s)), ['fixture.orders.v1.Orders', 'CreateOrder'])).toThrow(RequestParseError);
  });

  it('an Any holding an Any, nested past the depth limit, is a parse error, not a stack overflow', () => {
    // extra (21) = Any{type_url: Any, value: Any{...}} nested 2,000 deep.
    const url = Buffer.from('type.googleapis.com/google.protobuf.Any');
    let any: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 2_000; i++) any = Buffer.concat([lenField(1, url), lenField(2, any)]);
    expect(() => set.toJson(REQ, lenField(21, any))).toThrow(ProtoJsonError);
    expect(() => set.toJson(REQ, lenField(21, any))).toThrow(/recursion depth/);
  });

  it('groups nested past the depth limit are refused', () => {
    const open = Buffer.alloc(300, (5 << 3) | 3);
    expect(() => set.toJson(REQ, open)).toThrow(ProtoJsonError);
  });

  it('a shallow Struct is read', () => {
    let s: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 20; i++) s = lenField(1, Buffer.concat([lenField(1, Buffer.from('a')), lenField(2, lenField(5, s))]));
    expect(JSON.stringify(set.toJson(REQ, lenField(18, s)))).toMatch(/^\{"meta":\{"a":\{"a":/);
  });

  it('map keys that are Object.prototype names stay data', () => {
    const entry = Buffer.concat([lenField(1, Buffer.from('__proto__')), Buffer.from([0x10, 0x01])]);
    const out = set.toJson(REQ, lenField(11, entry)) as { tags: Record<string, unknown> };
    expect(Object.keys(out.tags)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(out.tags)).toBe(Object.prototype);
  });

  it('a descriptor file that is not a FileDescriptorSet, or lacks imports, is a config error naming the key', async () => {
    const loaded = { file: join(tmp.dir, 'config.yaml'), dir: tmp.dir };
    writeFileSync(join(tmp.dir, 'junk.pb'), Buffer.from([0xff, 0xff, 0xff]));
    await expect(GrpcBodies.load(loaded, 'junk.pb')).rejects.toThrow(ConfigError);
    await expect(GrpcBodies.load(loaded, 'junk.pb')).rejects.toThrow(/proto_descriptor/);
    // orders.proto alone, without the google/protobuf files it imports
    const only = readFileSync(PB);
    const { default: descriptor } = await import('protobufjs/ext/descriptor/index.js');
    const decoded = descriptor.FileDescriptorSet.decode(only) as unknown as { file: { name: string }[] };
    decoded.file = decoded.file.filter((f) => f.name === 'orders.proto');
    writeFileSync(join(tmp.dir, 'partial.pb'), descriptor.FileDescriptorSet.encode(decoded).finish());
    await expect(GrpcBodies.load(loaded, 'partial.pb')).rejects.toThrow(/not in the set \(use --include_imports\)/);
    await expect(GrpcBodies.load(loaded, 'missing.pb')).rejects.toThrow(/cannot read file/);
  });
});
