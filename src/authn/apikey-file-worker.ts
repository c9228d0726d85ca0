// Worker thread entry (FileApiKeyStore.load): reads the API key file named in workerData and
// serves its compiled records in batches of 1,000 (lib/module-worker.ts).
import { workerData } from 'node:worker_threads';
import { batchesOf, serveParts } from '../lib/module-worker.js';
import { readApiKeyFile, type KeyFileJob } from './apikey-store.js';

const job = workerData as KeyFileJob;
serveParts(async () => batchesOf(await readApiKeyFile({ file: job.file, dir: job.dir }, job.path), 1000));
