// A worker thread does not inherit the main thread's tsx loader (Node 20): register it here,
// then load the TypeScript worker named in workerData.entry.
import { workerData } from 'node:worker_threads';

const { register } = await import('tsx/esm/api');
register();
await import(workerData.entry);
