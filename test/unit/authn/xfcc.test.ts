// x-forwarded-client-cert: the grammar Envoy emits, read by a linear tokenizer behind a size cap.
import { describe, expect, it } from 'vitest';
import { MtlsAuthenticator } from '../../../src/authn/mtls.js';
import { MAX_XFCC_CHARS, lastXfccElement } from '../../../src/authn/spiffe.js';
import { requestView } from '../../helpers/requests.js';

const HASH = '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688';

describe('lastXfccElement', () => {
  // The first four are the examples of Envoy's x-forwarded-client-cert documentation.
  it.each([
    [
      `By=http://frontend.lyft.com;Hash=${HASH};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
      { uri: 'http://testclient.lyft.com' },
    ],
    [
      `By=http://frontend.lyft.com;Hash=${HASH};URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=http://frontend.lyft.com`,
      { uri: 'http://frontend.lyft.com' },
    ],
    [
      `By=http://frontend.lyft.com;Hash=${HASH};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`,
      { uri: 'http://testclient.lyft.com' },
    ],
    [
      `By=http://frontend.lyft.com;Hash=${HASH};Cert="-----BEGIN%20CERTIFICATE-----%0AMIID...%0A-----END%20CERTIFICATE-----%0A";Subject="/C=US/CN=Test Client";URI=http://testclient.lyft.com`,
      { cert: '-----BEGIN%20CERTIFICATE-----%0AMIID...%0A-----END%20CERTIFICATE-----%0A', uri: 'http://testclient.lyft.com' },
    ],
    ['By=a;URI=spiffe://x/1,By=b;Cert="a,b;c";URI=spiffe://x/2', { uri: 'spiffe://x/2', cert: 'a,b;c' }],
    ['Subject="CN=\\"quoted\\", O=x;y";URI=spiffe://x/a', { uri: 'spiffe://x/a' }],
    ['uri=spiffe://x/a ; By = b', { uri: 'spiffe://x/a' }],
    ['URI=spiffe://x/a, By=b', {}],
    ['Hash=abc', {}],
  ])('%s', (header, expected) => {
    expect(lastXfccElement(header)).toEqual(expected);
  });

  it.each([
    ['', 'empty'],
    ['URI=spiffe://x/a,', 'trailing comma'],
    ['URI', 'no ='],
    ['=spiffe://x/a', 'empty key'],
    ['Subject="CN=x;URI=spiffe://x/a', 'unterminated quote'],
    ['Subject="CN=x\\";URI=spiffe://x/a', 'escaped closing quote'],
    ['URI=spiffe://x/"a"', 'quote inside an unquoted value'],
    ['Subject="CN=x"junk;URI=spiffe://x/a', 'text after a closing quote'],
    ['URI=spiffe://x/a;URI=spiffe://x/b', 'two URIs in the last element'],
    ['Cert="a";Cert="b";URI=spiffe://x/a', 'two Certs in the last element'],
  ])('refuses %j (%s)', (header) => {
    expect(lastXfccElement(header)).toBeUndefined();
  });

  it(`refuses a header longer than ${MAX_XFCC_CHARS} characters before reading it`, () => {
    const long = `URI=spiffe://x/a;Hash=${'a'.repeat(MAX_XFCC_CHARS)}`;
    expect(lastXfccElement(long)).toBeUndefined();
    expect(lastXfccElement(long, Infinity)).toEqual({ uri: 'spiffe://x/a' });
  });

  it('is linear: hostile headers of 40,000 characters and of 1 MB take a few ms, in proportion to their size', () => {
    // Shapes that made the regex parser quadratic (every `;` scanned the rest of the header for
    // quotes), and valid ones that run every branch of the tokenizer to the end.
    const shapes: ((n: number) => string)[] = [
      (n) => `x=${';'.repeat(n)}`,
      (n) => `x=${'";'.repeat(n / 2)}`,
      (n) => `x="${'\\"'.repeat(n / 2)}"`,
      (n) => `x=${';a="b"'.repeat(n / 6)}`,
      (n) => `${'By=a;Hash=b,'.repeat(n / 12)}URI=spiffe://x/y`,
      (n) => `URI="${'\\;'.repeat(n / 2)}"`,
      (n) => `x=${'='.repeat(n)}`,
    ];
    // Header values arrive decoded from protobuf, as flat strings: built the same way here.
    const flat = (s: string): string => Buffer.from(s).toString();
    const median = (header: string): number => {
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        lastXfccElement(header, Infinity);
        runs.push(performance.now() - t0);
      }
      return runs.sort((a, b) => a - b)[2]!;
    };
    expect(lastXfccElement(flat(shapes[4]!(1_000_000)), Infinity)).toEqual({ uri: 'spiffe://x/y' });
    for (const shape of shapes) {
      const small = flat(shape(40_000));
      const large = flat(shape(1_000_000));
      expect(small.length).toBeGreaterThanOrEqual(39_990);
      expect(large.length).toBeGreaterThanOrEqual(999_990);
      const ts = median(small);
      const tl = median(large);
      // A few ms on an idle machine; the bounds leave room for a busy one (the regex took seconds).
      expect(ts, shape(12)).toBeLessThan(50);
      expect(tl, shape(12)).toBeLessThan(1000);
      // 25 times the size: linear is ~25 times the time, quadratic ~625 times.
      expect(tl / Math.max(ts, 0.5), shape(12)).toBeLessThan(150);
    }
  });
});

describe('MtlsAuthenticator with trust_xfcc', () => {
  const a = new MtlsAuthenticator({ trust_domains: [{ name: 'dev.local' }], trust_xfcc: true });
  const code = (headers: Record<string, string>): Promise<string | undefined> =>
    Promise.resolve(a.authenticate(requestView({ headers }))).then(
      () => undefined,
      (e: unknown) => (e as { code?: string }).code,
    );

  it('denies an oversized or malformed header uniformly (svid_invalid), and reads a good one', async () => {
    expect(await code({ 'x-forwarded-client-cert': `URI=spiffe://dev.local/a;Hash=${'a'.repeat(MAX_XFCC_CHARS)}` })).toBe('svid_invalid');
    expect(await code({ 'x-forwarded-client-cert': 'URI=spiffe://dev.local/a;URI=spiffe://dev.local/b' })).toBe('svid_invalid');
    expect(await code({ 'x-forwarded-client-cert': 'Subject="unterminated;URI=spiffe://dev.local/a' })).toBe('svid_invalid');
    expect(await a.authenticate(requestView({ headers: { 'x-forwarded-client-cert': 'By=spiffe://dev.local/gw;URI=spiffe://dev.local/a' } }))).toMatchObject({ id: 'spiffe://dev.local/a' });
  });
});
