// istiod reads meshConfig.extensionProviders as Istio's MeshConfig proto, and there is no CRD
// schema for it: envoy/istio/extension-provider.yaml is checked against the proto itself
// (istio.io/api's mesh/v1alpha1/config.proto at the pinned version), field by field, as the
// proto3 JSON mapping istiod applies (an unknown field or a wrong type is refused).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';
import { istioApiDir, renderNotes } from './chart.js';

function meshConfigType(): protobuf.Type {
  const dir = istioApiDir();
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => [join(dir, target), join(dir, 'common-protos', target)].find((p) => {
    try {
      readFileSync(p);
      return true;
    } catch {
      return false;
    }
  }) ?? target;
  root.loadSync('mesh/v1alpha1/config.proto');
  root.resolveAll();
  return root.lookupType('istio.mesh.v1alpha1.MeshConfig');
}

const INTEGER = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const LONG = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** Problems of `value` as the JSON form of `type` (proto3 JSON mapping, camelCase names). */
function check(type: protobuf.Type, value: unknown, at: string): string[] {
  switch (type.fullName) {
    case '.google.protobuf.Duration':
      return typeof value === 'string' && /^-?\d+(\.\d{1,9})?s$/.test(value) ? [] : [`${at}: not a duration`];
    case '.google.protobuf.Struct':
    case '.google.protobuf.Value':
    case '.google.protobuf.ListValue':
      return [];
    case '.google.protobuf.BoolValue':
      return typeof value === 'boolean' ? [] : [`${at}: not a boolean`];
    case '.google.protobuf.StringValue':
      return typeof value === 'string' ? [] : [`${at}: not a string`];
    case '.google.protobuf.UInt32Value':
    case '.google.protobuf.Int32Value':
    case '.google.protobuf.DoubleValue':
    case '.google.protobuf.FloatValue':
      return typeof value === 'number' ? [] : [`${at}: not a number`];
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    if (!field) {
      out.push(`${at}.${key}: unknown field of ${type.name}`);
      continue;
    }
    const items = field.repeated ? (Array.isArray(v) ? v : null) : [v];
    if (items === null) {
      out.push(`${at}.${key}: not a list`);
      continue;
    }
    const values = field.map ? Object.values(v as object) : items;
    for (const item of values) out.push(...checkField(field, item, `${at}.${key}`));
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => f.name in value);
    if (set.length > 1) out.push(`${at}: more than one of ${oneof.name} (${set.map((f) => f.name).join(', ')})`);
  }
  return out;
}

function checkField(field: protobuf.Field, v: unknown, at: string): string[] {
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) return check(t, v, at);
  if (t instanceof protobuf.Enum) return (typeof v === 'string' && v in t.values) || Number.isInteger(v) ? [] : [`${at}: not one of ${Object.keys(t.values).join(', ')}`];
  if (field.type === 'string' || field.type === 'bytes') return typeof v === 'string' ? [] : [`${at}: not a string`];
  if (field.type === 'bool') return typeof v === 'boolean' ? [] : [`${at}: not a boolean`];
  if (INTEGER.has(field.type)) return Number.isInteger(v) ? [] : [`${at}: not an integer`];
  if (LONG.has(field.type)) return Number.isInteger(v) || (typeof v === 'string' && /^-?\d+$/.test(v)) ? [] : [`${at}: not an integer`];
  return typeof v === 'number' ? [] : [`${at}: not a number`];
}

describe('meshConfig against Istio\'s MeshConfig proto', () => {
  const mesh = meshConfigType();
  const tmp = tempDir();
  const op = parse(readFileSync(join(ROOT, 'envoy', 'istio', 'extension-provider.yaml'), 'utf8')) as { spec: { meshConfig: Record<string, unknown> } };

  it('envoy/istio/extension-provider.yaml is a valid MeshConfig', () => {
    expect(check(mesh, op.spec.meshConfig, 'meshConfig')).toEqual([]);
  });

  it('the meshConfig NOTES.txt prints for istiod is a valid MeshConfig and the same entry as envoy/istio/extension-provider.yaml', () => {
    const notes = renderNotes(tmp.dir, ['envoy/istio/values.yaml']);
    // The indented block from "meshConfig:" to the next blank line.
    const block = /^( *)meshConfig:\n(?:\1 .*\n)+/m.exec(notes);
    expect(block, notes).not.toBeNull();
    const fromNotes = (parse(block![0].replace(new RegExp(`^${block![1]}`, 'gm'), '')) as { meshConfig: Record<string, unknown> }).meshConfig;
    expect(check(mesh, fromNotes, 'meshConfig')).toEqual([]);
    expect(fromNotes).toEqual(op.spec.meshConfig);
  });

  it('refuses a misspelt field, a wrong type and two providers in one entry', () => {
    const entry = (op.spec.meshConfig.extensionProviders as Record<string, Record<string, unknown>>[])[0]!;
    const grpc = entry.envoyExtAuthzGrpc!;
    const bad = (e: Record<string, unknown>): string[] => check(mesh, { extensionProviders: [e] }, 'meshConfig');
    expect(bad({ ...entry, envoyExtAuthzGrpc: { ...grpc, failopen: false } })).toEqual([expect.stringMatching(/failopen: unknown field/)]);
    expect(bad({ ...entry, envoyExtAuthzGrpc: { ...grpc, timeout: 200 } })).toEqual([expect.stringMatching(/timeout: not a duration/)]);
    expect(bad({ ...entry, envoyExtAuthzGrpc: { ...grpc, port: '9191x' } })).toEqual([expect.stringMatching(/port: not an integer/)]);
    expect(bad({ ...entry, envoyExtAuthzHttp: { service: 'x', port: 80 } })).toEqual([expect.stringMatching(/more than one of provider/)]);
  });
});
