// Call metadata from node:http2's raw header list: read in place when no -bin value is present,
// parsed whole when one is (a malformed one refuses the call). Both must say the same.
import { describe, expect, it } from 'vitest';
import { parseMetadata } from '../../../src/server/grpc-wire.js';

describe('parseMetadata', () => {
  const raw = [':path', '/x', 'content-type', 'application/grpc', 'te', 'trailers', 'x-a', '1', 'traceparent', '00-abc', 'x-a', '2', 'X-Upper', 'u', 'user-agent', 'grpc-go'];

  it('reads keys in place as a full parse would: every value, in order, reserved and pseudo headers left out', () => {
    const md = parseMetadata(raw)!;
    expect(md.get('x-a')).toEqual(['1', '2']);
    expect(md.get('X-A')).toEqual(['1', '2']);
    expect(md.get('traceparent')).toEqual(['00-abc']);
    expect(md.get('x-upper')).toEqual(['u']);
    expect(md.get('content-type')).toEqual([]);
    expect(md.get(':path')).toEqual([]);
    expect(md.get('missing')).toEqual([]);
    // A returned list is the caller's own.
    md.get('x-a').push('3');
    expect(md.get('x-a')).toEqual(['1', '2']);
    expect(md.getMap()).toEqual({ 'x-a': '1, 2', traceparent: '00-abc', 'x-upper': 'u' });
  });

  it('gives the same answers whether a -bin value made it parse the whole list at once', () => {
    const lazy = parseMetadata(raw)!;
    const eager = parseMetadata([...raw, 'x-data-bin', 'AQID, BAU'])!;
    for (const k of ['x-a', 'traceparent', 'x-upper', 'content-type', ':path', 'missing']) expect(eager.get(k)).toEqual(lazy.get(k));
    expect(eager.get('x-data-bin')).toEqual([Buffer.from([1, 2, 3]), Buffer.from([4, 5])]);
    expect(lazy.get('x-data-bin')).toEqual([]);
  });

  it('refuses a malformed -bin value, whatever the case of its name', () => {
    expect(parseMetadata(['x-data-bin', '***'])).toBeUndefined();
    expect(parseMetadata(['X-Data-BIN', '***'])).toBeUndefined();
    expect(parseMetadata(['x-data-bin', 'AQID'])).toBeDefined();
  });
});
