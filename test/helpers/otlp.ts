// A real OTLP/HTTP trace receiver for tests: accepts protobuf ExportTraceServiceRequest on
// /v1/traces (what both Envoy and our exporter send) and keeps the spans.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

// The subset of opentelemetry/proto (collector/trace/v1, trace/v1, common/v1) the tests read,
// with the field numbers of the OTLP specification.
const PROTO = `
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; bytes bytes_value = 7; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const Request = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('ExportTraceServiceRequest');

/** Decodes one ExportTraceServiceRequest into spans. */
function collect(body: Buffer, into: ReceivedSpan[]): void {
  const msg = Request.toObject(Request.decode(body), { longs: String, bytes: Array }) as Decoded;
  for (const rs of msg.resource_spans ?? []) {
    const resource = Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, val(a.value)]));
    const service = String(resource['service.name']);
    for (const ss of rs.scope_spans ?? []) {
      for (const s of ss.spans ?? []) {
        into.push({
          service,
          resource,
          name: s.name,
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, val(a.value)])),
        });
      }
    }
  }
}

/** The same receiver over OTLP/gRPC: opentelemetry.proto.collector.trace.v1.TraceService/Export. */
export async function startOtlpGrpcReceiver(): Promise<{ port: number; spans: ReceivedSpan[]; server: GrpcServer }> {
  const spans: ReceivedSpan[] = [];
  const server = new GrpcServer();
  const identity = (b: Buffer): Buffer => b;
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Export: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
        collect(call.request, spans);
        callback(null, Buffer.alloc(0)); // an empty ExportTraceServiceResponse
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, spans, server };
}

export interface ReceivedSpan {
  service: string;
  /** The exporter's resource attributes (service.*, deployment.*). */
  resource: Record<string, string | number | boolean>;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, string | number | boolean>;
}

interface Decoded {
  resource_spans?: {
    resource?: { attributes?: { key: string; value?: Record<string, unknown> }[] };
    scope_spans?: { spans?: { trace_id: Uint8Array; span_id: Uint8Array; parent_span_id?: Uint8Array; name: string; attributes?: { key: string; value?: Record<string, unknown> }[] }[] }[];
  }[];
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');
const val = (v: Record<string, unknown> | undefined): string | number | boolean => {
  const x = v ? Object.values(v)[0] : '';
  return typeof x === 'object' && x !== null ? JSON.stringify(x) : (x as string | number | boolean);
};

/** `port`: a given loopback port (e.g. one an exporter already failed to reach), else a free one. */
export async function startOtlpReceiver(port = 0): Promise<{ port: number; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        collect(Buffer.concat(chunks), spans);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, spans, server };
}
