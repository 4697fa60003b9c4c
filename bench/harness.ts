import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

/**
 * The benchmark contract. A module `bench/NAME.bench.ts` exports `benchmarks`; each one measures
 * and returns figures. bench/run.ts finds the modules, runs them one after another on this single
 * thread, prints each figure as a JSON line, then a summary table.
 */
export interface Measurement {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same quantity for a reference implementation measured in the same run. */
  readonly baseline?: number;
  /** value / baseline (computed by the runner when a baseline is given). */
  readonly ratio?: number;
  /** A target the value should meet (see `higherIsBetter`). */
  readonly limit?: number;
  /** Default true: a rate. False for latencies, where the value must stay at or under `limit`. */
  readonly higherIsBetter?: boolean;
  /** Free-form detail (sample count, sizes). */
  readonly note?: string;
}

export interface Benchmark {
  readonly name: string;
  run(): Promise<Measurement[]> | Measurement[];
}

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly date: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

/**
 * Operations per second of `operation`, after a warm-up (so the JIT has settled): calls it in
 * batches until `minTimeMs` of wall time has passed, and keeps the best of `rounds` rounds (the
 * least disturbed by other processes on a shared machine).
 */
export function opsPerSecond(operation: () => void, options: { batch?: number; minTimeMs?: number; rounds?: number; warmupMs?: number } = {}): number {
  const batch = options.batch ?? 100;
  const run = (ms: number): number => {
    let ops = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      for (let i = 0; i < batch; i++) operation();
      ops += batch;
      elapsed = performance.now() - start;
    } while (elapsed < ms);
    return (ops * 1000) / elapsed;
  };
  run(options.warmupMs ?? 200);
  let best = 0;
  for (let r = 0; r < (options.rounds ?? 3); r++) best = Math.max(best, run(options.minTimeMs ?? 500));
  return best;
}

/** Percentile (0..100) of a sample, nearest-rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Did the measurement meet its limit (undefined when it has none)? */
export function meetsLimit(m: Measurement): boolean | undefined {
  if (m.limit === undefined) return undefined;
  return m.higherIsBetter === false ? m.value <= m.limit : m.value >= m.limit;
}

/**
 * A child process that serves a pseudo-terminal at a fresh path (`argsFor(path)`: node's
 * arguments), for the duration of `use`: ready once its stderr says `ready`, stopped with SIGINT
 * (SIGKILL after 5 s) and its directory removed afterwards.
 */
export async function withPtyChild<T>(prefix: string, ready: string, argsFor: (ptyPath: string) => readonly string[], use: (ptyPath: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ptyPath = join(dir, 'pty');
  const child = spawn(process.execPath, [...argsFor(ptyPath)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 30_000;
    while (!stderr.includes(ready)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${argsFor(ptyPath).join(' ')} did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return await use(ptyPath);
  } finally {
    child.kill('SIGINT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
