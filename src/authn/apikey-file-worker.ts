// Worker thread entry (FileApiKeyStore.load): reads the API key file named in workerData and
// serves its compiled records in batches of 1,000 (lib/module-worker.ts).
import { workerData } from 'node:worker_threads';
import { serveParts } from '../lib/module-worker.js';
import { readApiKeyFile, type ApiKeyRecord, type KeyFileJob } from './apikey-store.js';

const BATCH = 1000;

function* batches(byId: ReadonlyMap<string, ApiKeyRecord>): Generator<[string, ApiKeyRecord][]> {
  let batch: [string, ApiKeyRecord][] = [];
  for (const entry of byId) {
    batch.push(entry);
    if (batch.length === BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

const job = workerData as KeyFileJob;
serveParts(async () => batches(await readApiKeyFile({ file: job.file, dir: job.dir }, job.path)));
