// Before a Check server is measured: one allowed and one denied request must get the answers
// they should (status OK; PERMISSION_DENIED, which Envoy turns into 403 when no denied_response
// says otherwise - the real opa-envoy-plugin sends none for a boolean `false`). A peer started on
// the wrong rule or path would otherwise be measured answering something else, at another cost.
import { authzClient } from '../../test/helpers/grpc.js';
import type { CheckRequest } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';

const OK = 0;
const PERMISSION_DENIED = 7;

export async function assertCheckAnswers(name: string, address: string, allow: unknown, deny: unknown): Promise<void> {
  const client = authzClient(address);
  try {
    const a = (await client.check(allow as CheckRequest)).status?.code ?? OK;
    const d = (await client.check(deny as CheckRequest)).status?.code ?? OK;
    if (a !== OK || d !== PERMISSION_DENIED) throw new Error(`${name} answered ${a} to an allowed request and ${d} to a denied one (expected ${OK} and ${PERMISSION_DENIED})`);
  } finally {
    client.close();
  }
}
