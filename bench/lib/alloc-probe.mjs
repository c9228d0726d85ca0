// Preloaded into the server under test (node --import) for one run of its own: V8's sampling
// heap profiler, keeping samples of objects the GC has already collected too, so the profile
// says where every allocated byte came from, not only what is still alive. On SIGUSR2 it writes
// the profile to $BENCH_ALLOC_PROFILE_FILE and starts over (the first signal ends the warm-up).
// It slows allocation down: no measured run loads it. Bench-only: the product does not load it.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import process from 'node:process';

const file = process.env.BENCH_ALLOC_PROFILE_FILE;
if (file) {
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  const start = () => post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  await post('HeapProfiler.enable');
  await start();
  process.on('SIGUSR2', () => {
    void post('HeapProfiler.stopSampling').then(async ({ profile }) => {
      writeFileSync(`${file}.tmp`, JSON.stringify(profile));
      renameSync(`${file}.tmp`, file);
      await start();
    });
  });
}
