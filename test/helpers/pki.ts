// Test certificates made with the openssl CLI: a CA and leaves with chosen SANs and CA flag.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  caPem: string;
  /** Issues a leaf signed by the CA; returns its PEM (key in `leaf-<name>.key`). */
  leaf(name: string, opts: { san?: string; ca?: boolean }): string;
}

const ossl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });

export function testPki(dir: string): TestPki {
  ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'ca.key')]);
  ossl(['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-sha256', '-days', '2', '-subj', '/CN=test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', join(dir, 'ca.crt')]);
  return {
    dir,
    caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    leaf(leafName, opts) {
      const name = `leaf-${leafName}`;
      const key = join(dir, `${name}.key`);
      ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
      ossl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', join(dir, `${name}.csr`)]);
      const ext = [`basicConstraints=critical,CA:${opts.ca ? 'TRUE' : 'FALSE'}`, ...(opts.san ? [`subjectAltName=${opts.san}`] : [])].join('\n');
      writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
      ossl(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '2', '-sha256', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`)]);
      return readFileSync(join(dir, `${name}.crt`), 'utf8');
    },
  };
}
