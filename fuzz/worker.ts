import { parentPort, workerData } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { runParser, runStackRound, type InputSink } from './engine.js';
import { SHARED_INPUT_BYTES, type WorkerJob } from './watchdog.js';

/**
 * One fuzz job in a worker thread, watched from fuzz/run.ts: before each input it bumps a
 * heartbeat and copies the input into shared memory, so when the job stops beating (a loop that
 * never returns) the watchdog can report the exact input and terminate the thread.
 */
const job = workerData as WorkerJob;
// A full collection before the heap is read, so rounds compare live memory, not garbage.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
const header = new Int32Array(job.shared, 0, 3);
const bytes = new Uint8Array(job.shared, 12, SHARED_INPUT_BYTES);

const sink: InputSink = {
  current(index, input) {
    const n = Math.min(input.length, SHARED_INPUT_BYTES);
    bytes.set(input.subarray(0, n));
    Atomics.store(header, 1, index);
    Atomics.store(header, 2, n);
    Atomics.add(header, 0, 1);
  },
};

async function main(): Promise<void> {
  if (job.kind === 'parser') {
    parentPort!.postMessage({ type: 'done', result: runParser(job.target, job.count, job.seed, sink), heapUsed: process.memoryUsage().heapUsed });
    return;
  }
  if (job.kind === 'watchdog-check') {
    // A target that hangs on purpose, on its 3rd input: the watchdog must name that input.
    for (let i = 0; i < job.count; i++) {
      sink.current(i, Uint8Array.of(0xde, 0xad, i));
      // eslint-disable-next-line no-empty
      if (i === 2) for (;;) {}
    }
    parentPort!.postMessage({ type: 'done', result: { target: job.target, inputs: job.count } });
    return;
  }
  const round = await runStackRound(job.count, job.seed, {
    sink,
    onProgress: (inputs) => parentPort!.postMessage({ type: 'progress', inputs }),
  });
  collect();
  parentPort!.postMessage({ type: 'done', result: round, heapUsed: process.memoryUsage().heapUsed });
}

void main();
