import fc from 'fast-check';
import { parserTargets } from './parsers.js';
import { StackUnderFire, attackArbitrary, type StackFuzzReport } from './stack-target.js';

/**
 * The fuzzing loops, shared by `npm run fuzz` (fuzz/run.ts, in a worker under a watchdog) and the
 * short seeded run in the test suite (test/fuzz/fuzz.test.ts). Inputs come from fast-check's
 * generators in seeded batches, so a failure names the seed and index that reproduce it.
 */

/** Where a loop reports each input before it runs it (the watchdog reads it if the loop hangs). */
export interface InputSink {
  current(index: number, bytes: Uint8Array): void;
}

export interface FuzzFailure {
  readonly target: string;
  readonly seed: number;
  readonly index: number;
  readonly message: string;
  /** The input (for the stack: the frame), hex. */
  readonly input: string;
  readonly attack?: unknown;
}

export interface ParserRun {
  readonly target: string;
  readonly inputs: number;
  readonly failure?: FuzzFailure;
}

const BATCH = 500;

/** Run `count` inputs of one parser target from `seed`. */
export function runParser(name: string, count: number, seed: number, sink?: InputSink): ParserRun {
  const target = parserTargets.find((t) => t.name === name);
  if (!target) throw new Error(`no parser target ${name}`);
  let done = 0;
  for (let batch = 0; done < count; batch++) {
    const batchSeed = seed * 100_003 + batch;
    const inputs = fc.sample(target.input, { seed: batchSeed, numRuns: Math.min(BATCH, count - done) });
    for (let i = 0; i < inputs.length; i++, done++) {
      const bytes = inputs[i]!;
      sink?.current(done, bytes);
      try {
        target.run(bytes);
      } catch (error) {
        return { target: name, inputs: done, failure: { target: name, seed: batchSeed, index: i, message: describe(error), input: hex(bytes) } };
      }
    }
  }
  return { target: name, inputs: done };
}

export interface StackRound {
  readonly inputs: number;
  readonly report?: StackFuzzReport;
  readonly failure?: FuzzFailure;
  readonly seconds: number;
}

/**
 * One round of the receive-path target: a fresh victim and peer, `count` hostile inputs with the
 * transfers running, invariants every `checkEvery`, then finish(): the transfers end byte-exact
 * and ping answers both ways.
 */
export async function runStackRound(count: number, seed: number, options: { sink?: InputSink; checkEvery?: number; transferBytes?: number; onProgress?: (inputs: number) => void } = {}): Promise<StackRound> {
  const started = performance.now();
  const fuzzer = await StackUnderFire.create(seed, options.transferBytes);
  const checkEvery = options.checkEvery ?? 1000;
  let frame: Uint8Array = new Uint8Array(0);
  let attack: unknown;
  let batchSeed = seed;
  let index = 0;
  const seconds = () => (performance.now() - started) / 1000;
  try {
    for (let batch = 0; fuzzer.inputs < count; batch++) {
      batchSeed = seed * 100_003 + batch;
      const attacks = fc.sample(attackArbitrary, { seed: batchSeed, numRuns: Math.min(BATCH, count - fuzzer.inputs) });
      for (index = 0; index < attacks.length; index++) {
        attack = attacks[index];
        fuzzer.feed(attacks[index]!, (f) => {
          frame = f;
          options.sink?.current(fuzzer.inputs, f);
        });
        if (fuzzer.inputs % checkEvery === 0) fuzzer.checkInvariants();
      }
      options.onProgress?.(fuzzer.inputs);
    }
    fuzzer.checkInvariants();
    const report = await fuzzer.finish();
    return { inputs: fuzzer.inputs, report, seconds: seconds() };
  } catch (error) {
    return { inputs: fuzzer.inputs, failure: { target: 'stack', seed: batchSeed, index, message: describe(error), input: hex(frame), attack: attack && { ...attack, bytes: hex((attack as { bytes: Uint8Array }).bytes) } }, seconds: seconds() };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
