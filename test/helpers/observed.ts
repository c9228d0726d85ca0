// A service for observability tests: a trusted issuer, a second issuer whose JWKS never
// answers (so a Check can fail closed on demand), and one rate-limit file; with clients.
import { afterAll } from 'vitest';
import { authzClient, rlsClient, type AuthzClient, type RlsClient } from './grpc.js';
import { loopbackServer } from './http.js';
import { AUDIENCE, jwks, makeKey, type TestKey, jwksFileIssuer } from './keys.js';
import { configYaml, startInProcess } from './service.js';
import type { tempDir } from './tmp.js';

export const SLOW_ISSUER = 'https://slow.test.invalid';

export interface ObservedService {
  key: TestKey;
  svc: Awaited<ReturnType<typeof startInProcess>>;
  authz: AuthzClient;
  rls: RlsClient;
}

export async function startObservedService(tmp: ReturnType<typeof tempDir>, limitsYaml: string): Promise<ObservedService> {
  const key = await makeKey();
  tmp.write('jwks.json', jwks(key));
  tmp.write('limits.yaml', limitsYaml);
  const hang = await loopbackServer(() => undefined);
  const svc = await startInProcess(
    tmp.write(
      'authz.yaml',
      configYaml({
        server: { address: '127.0.0.1:0' },
        check: { deadline_ms: 100 },
        authentication: {
          jwt: {
            issuers: [
              jwksFileIssuer(),
              { issuer: SLOW_ISSUER, audiences: [AUDIENCE], jwks: { url: `${hang.url}/jwks`, allow_insecure_http: true } },
            ],
          },
        },
        ratelimit: { files: ['limits.yaml'] },
      }),
    ),
  );
  const out = { key, svc, authz: authzClient(svc.address), rls: rlsClient(svc.address) };
  afterAll(async () => {
    out.authz.close();
    out.rls.close();
    await svc.shutdown();
  });
  return out;
}
