import { Worker } from 'node:worker_threads';
import type { FuzzFailure, ParserRun, StackRound } from './engine.js';

/**
 * Runs one fuzz job in a worker thread and watches it: if its heartbeat (bumped before every
 * input) stands still for `hangMs`, the job is hung on that input — the watchdog reads the input
 * from shared memory, terminates the thread and reports it as a failure.
 */
export interface WorkerJob {
  readonly kind: 'parser' | 'stack' | 'watchdog-check';
  readonly target: string;
  readonly count: number;
  readonly seed: number;
  /** Int32Array view: [0] heartbeat, [1] input index, [2] input length; bytes from offset 12. */
  readonly shared: SharedArrayBuffer;
}

export const SHARED_INPUT_BYTES = 65_536;

export interface JobResult {
  readonly result?: ParserRun | StackRound;
  readonly failure?: FuzzFailure;
  readonly heapUsed?: number;
}

/** How long a worker may take to load before its first input. */
const BOOT_ALLOWANCE_MS = 60_000;

export function runWatched(job: Omit<WorkerJob, 'shared'>, options: { hangMs?: number; onProgress?: (inputs: number) => void } = {}): Promise<JobResult> {
  const shared = new SharedArrayBuffer(12 + SHARED_INPUT_BYTES);
  const header = new Int32Array(shared, 0, 3);
  const worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: { ...job, shared, entry: new URL('./worker.ts', import.meta.url).href } satisfies WorkerJob & { entry: string },
  });
  const hangMs = options.hangMs ?? 30_000;
  return new Promise((resolve) => {
    let lastBeat = -1;
    let lastChange = Date.now();
    let settled = false;
    const finish = (value: JobResult) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      resolve(value);
    };
    const timer = setInterval(() => {
      const beat = Atomics.load(header, 0);
      if (beat !== lastBeat) {
        lastBeat = beat;
        lastChange = Date.now();
        return;
      }
      // Until the first input the worker is still loading (tsx, the stack): a slow, loaded machine
      // is not a hang, so the boot gets its own, longer allowance.
      if (Date.now() - lastChange < (beat === 0 ? Math.max(hangMs, BOOT_ALLOWANCE_MS) : hangMs)) return;
      const length = Atomics.load(header, 2);
      const input = Buffer.from(new Uint8Array(shared, 12, length)).toString('hex');
      const index = Atomics.load(header, 1);
      void worker.terminate();
      finish({ failure: { target: job.target, seed: job.seed, index, message: `hung: no progress for ${hangMs} ms on input ${index}`, input } });
    }, Math.min(1_000, hangMs / 4));
    worker.on('message', (message: { type: string; inputs?: number; result?: ParserRun | StackRound; heapUsed?: number }) => {
      if (message.type === 'progress') options.onProgress?.(message.inputs!);
      else if (message.type === 'done') {
        void worker.terminate();
        finish({ result: message.result!, failure: message.result!.failure, heapUsed: message.heapUsed });
      }
    });
    worker.on('error', (error: Error) => finish({ failure: { target: job.target, seed: job.seed, index: Atomics.load(header, 1), message: `worker threw: ${error.stack ?? error.message}`, input: '' } }));
    worker.on('exit', (code) => finish({ failure: { target: job.target, seed: job.seed, index: Atomics.load(header, 1), message: `worker exited (${code}) without a result`, input: '' } }));
  });
}
