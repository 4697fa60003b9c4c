import {
  HalError,
  type ArmOptions,
  type Hal,
  type HalErrorCode,
  type HalEvent,
  type InterruptLine,
  type ResetLine,
  type SpiDevice,
  type SpiTransaction,
} from '../../src/drivers/hal.js';
import { DATA_PAYLOAD, REFERABLE_READ_BYTES, batchDelayUs, batchReadLength, computedReadLength, encodeArm, extFlags, extTest, keptValue, transactionsLength } from '../bridge/protocol.js';
import type { Clock } from '../../src/time/clock.js';

/**
 * The mock HAL: SPI batches run against an in-process SPI slave (an emulated chip), on the
 * injected Clock. An optional link model makes it behave like the serial bridge: bytes take time
 * each way, each batch pays a turnaround, several batches can be in flight and they execute in
 * order. Everything that crosses the "link" is logged, so tests and benchmarks can count round
 * trips and bytes.
 *
 * Programs (SpiDevice.arm, docs/bridge-protocol.md §3.2) run on the "board" as the sketch runs
 * them: between two host commands, never inside one, and only when the next command has not fully
 * arrived (the sketch looks at its receive ring first). Under a link model a run occupies the chip
 * for its SPI time like a batch, and its answer comes back like a reply (line time, half the
 * turnaround) with no request going up.
 *
 * A transaction's delayUs (SpiDevice.transactionDelays) adds to its batch's time on the chip, with
 * a link model or without: the batch's effects land that much later, so the floor holds from every
 * earlier batch. Within a batch they still land at one instant, as everything here does.
 */

/** What the mock needs from an emulated chip: the byte-level SPI slave and its pins. */
/** Within a long transaction, the chip's own events may fall between pieces of this many bytes. */
const SPI_STEP_BYTES = 32;

export interface SpiSlave {
  spiSelect(): void;
  spiExchange(mosi: number): number;
  spiDeselect(): void;
  /**
   * Optional: a board-side wait (SpiTransaction.delayUs) before the next transaction, for a chip
   * that keeps its own time between SPI events (the W5500 emulator); the batch still lands at one
   * instant of the clock.
   */
  spiDelay?(us: number): void;
}

export interface InterruptSource {
  readonly interruptAsserted: boolean;
  onInterruptChange(callback: (asserted: boolean) => void): () => void;
}

export interface LinkModel {
  /** Serial throughput, each direction (e.g. 115200 baud 8N1 ≈ 11520 B/s). */
  bytesPerSecond: number;
  /** Fixed latency per batch, split evenly between the two directions (USB frames, firmware). */
  turnaroundMs: number;
  /** Framing bytes per batch in the request (and in the reply unless `replyOverheadBytes`). Default 4. */
  batchOverheadBytes?: number;
  /** Framing bytes per batch in the reply (a completion record). Default `batchOverheadBytes`. */
  replyOverheadBytes?: number;
  /** Instead of `replyOverheadBytes` when the reply carries read data (the bridge's ended DATA frames: a 3-byte DONE). */
  replyWithDataOverheadBytes?: number;
  /** Framing bytes per SPI transaction in the request (flags, lengths). Default 2. */
  transactionOverheadBytes?: number;
  /**
   * Instead of `transactionOverheadBytes`: the request bytes of a batch's transactions, headers
   * and write bytes (the bridge: protocol.ts transactionsLength with SHORT headers).
   */
  transactionBytes?: (transactions: readonly SpiTransaction[]) => number;
  /**
   * The link carries its payload in frames of at most this many bytes, each paying the chunk
   * overheads below (default: no chunking).
   */
  chunkBytes?: number;
  /** Bytes added per request chunk (delimiter, header, CRC). Default 0. */
  requestChunkOverheadBytes?: number;
  /** Bytes added per reply chunk carrying read data. Default 0. */
  replyChunkOverheadBytes?: number;
  /** Reply chunks carry at most this many bytes (default `chunkBytes`). */
  replyChunkBytes?: number;
  /** SPI clock on the board, bytes per second (8 MHz ≈ 1e6). The chip is busy that long. Default 1e6. */
  spiBytesPerSecond?: number;
}

/**
 * The serial bridge (docs/bridge-protocol.md) as a link model: a request is `0x10 id` then its
 * transactions as the version-2 bridge encodes them (SHORT headers of 2 bytes where lengths fit in
 * 4 bits, else 5; IF, LENGTH, DELAY operands), carried in DATA frames of ≤64 bytes that cost 6
 * bytes each (COBS, delimiter, type, seq, CRC-16); read bytes come back in DATA frames of ≤112
 * bytes at 9 bytes each, the last ending in the 3-byte DONE (caps bit 13; a 12-byte DONE frame
 * when nothing was read). Runs of two-byte writes go as PAIRS (caps bit 12). Not modelled: the board's credit ACKs (9 bytes per
 * ~250 request bytes consumed, on the reply direction) and INT events.
 */
export function bridgeLinkModel(bytesPerSecond: number, turnaroundMs: number): LinkModel {
  return {
    bytesPerSecond,
    turnaroundMs,
    batchOverheadBytes: 2,
    replyOverheadBytes: 12,
    replyWithDataOverheadBytes: 3,
    transactionBytes: (transactions) => transactionsLength(transactions, { shortHeaders: true, pairs: true }),
    chunkBytes: 64,
    replyChunkBytes: DATA_PAYLOAD,
    requestChunkOverheadBytes: 6,
    replyChunkOverheadBytes: 9,
  };
}

/** One batch (or program run) as it crossed the link. */
export interface SpiLogEntry {
  readonly issuedAt: number;
  executedAt: number;
  completedAt: number;
  readonly transactions: number;
  /** SPI bytes clocked out by the host (opcodes, arguments, data written). */
  readonly bytesWritten: number;
  /** SPI bytes clocked in for the host (what it asked to read). */
  readonly bytesRead: number;
  /** Bytes on the serial link under the link model (0 without one), host → board and back. */
  linkBytesUp: number;
  linkBytesDown: number;
  readonly batch: readonly SpiTransaction[];
  /** A run of the armed program: the board's doing, no request and no round trip. */
  readonly run?: boolean;
  /** Why the answer never reached the host (for a run: lost on the link, ELINKLOST or EPROTO). */
  error?: HalErrorCode;
}

export interface SpiLogTotals {
  batches: number;
  transactions: number;
  bytesWritten: number;
  bytesRead: number;
  /** Bytes on the serial link under the link model, host → board and board → host. */
  linkBytesUp: number;
  linkBytesDown: number;
  /**
   * Requests are round trips: the host cannot see a batch's result before it completes. Batches
   * and program commands (arm, disarm, runArmed) count; program runs do not.
   */
  roundTrips: number;
  /** Most requests (batches and program commands) that were in flight at the same time. */
  maxInFlight: number;
  /** Program runs (their transactions and bytes are in the counts above, their answers in linkBytesDown). */
  runs: number;
  /** arm, disarm and runArmed requests. */
  programCommands: number;
}

export class SpiLog {
  /** Recent entries (bounded by `capacity`); totals count everything. */
  readonly entries: SpiLogEntry[] = [];
  readonly totals: SpiLogTotals = emptyTotals();

  constructor(public capacity = 10_000) {}

  record(entry: SpiLogEntry): void {
    if (entry.run) {
      this.totals.runs++;
    } else {
      this.totals.batches++;
      this.totals.roundTrips++;
    }
    this.totals.transactions += entry.transactions;
    this.totals.bytesWritten += entry.bytesWritten;
    this.totals.bytesRead += entry.bytesRead;
    this.totals.linkBytesUp += entry.linkBytesUp;
    this.totals.linkBytesDown += entry.linkBytesDown;
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  /** A program command: a round trip that clocks nothing on SPI. */
  recordCommand(linkBytesUp: number, linkBytesDown: number): void {
    this.totals.programCommands++;
    this.totals.roundTrips++;
    this.totals.linkBytesUp += linkBytesUp;
    this.totals.linkBytesDown += linkBytesDown;
  }

  /** A copy of the totals, to diff against later. */
  snapshot(): SpiLogTotals {
    return { ...this.totals };
  }

  /** Totals since `since`. */
  since(since: SpiLogTotals): SpiLogTotals {
    const t = this.totals;
    return {
      batches: t.batches - since.batches,
      transactions: t.transactions - since.transactions,
      bytesWritten: t.bytesWritten - since.bytesWritten,
      bytesRead: t.bytesRead - since.bytesRead,
      linkBytesUp: t.linkBytesUp - since.linkBytesUp,
      linkBytesDown: t.linkBytesDown - since.linkBytesDown,
      roundTrips: t.roundTrips - since.roundTrips,
      maxInFlight: t.maxInFlight,
      runs: t.runs - since.runs,
      programCommands: t.programCommands - since.programCommands,
    };
  }

  clear(): void {
    this.entries.length = 0;
    Object.assign(this.totals, emptyTotals());
  }
}

function emptyTotals(): SpiLogTotals {
  return {
    batches: 0, transactions: 0, bytesWritten: 0, bytesRead: 0, linkBytesUp: 0, linkBytesDown: 0, roundTrips: 0, maxInFlight: 0,
    runs: 0, programCommands: 0,
  };
}

/** The sketch's program buffer (boards/bridge/bridge.ino PROGRAM_MAX): the ENC28J60 receive program is 35 bytes. */
const DEFAULT_MAX_PROGRAM_BYTES = 64;

export interface MockHalOptions {
  clock: Clock;
  slave: SpiSlave;
  interrupt?: InterruptSource;
  /** Called when the reset line is released after a pulse. */
  reset?: { hardReset(): void };
  linkModel?: LinkModel;
  /**
   * Clock a batch's bytes over its SPI time (with a link model), so that the chip's own events
   * fall between them, as on a board: a frame lands, a transmission ends, ERXWRPT moves while a
   * batch runs. Off: the batch's effects land at once when its last byte is clocked. The mock
   * boards (tools/boards.ts) turn it on.
   */
  bytesOverTime?: boolean;
  name?: string;
  logCapacity?: number;
  /**
   * Largest arm() program, encoded with SHORT headers as the bridge sends it (SpiDevice.maxProgramBytes).
   * Default 64, the sketch's; 0: a board without programs (arm rejects with EUNSUPPORTED).
   */
  maxProgramBytes?: number;
  /** The board honours SpiTransaction.delayUs (default true); false: a batch with one rejects (EUNSUPPORTED). */
  transactionDelays?: boolean;
  /** Programs may use ifSame, ifDiffer, copy, minusAt (SpiDevice.programExtensions; default true with programs). */
  programExtensions?: boolean;
}

interface Fault {
  code: HalErrorCode;
  /** The batch ran on the chip but its answer was lost (a timeout after execution). */
  executed: boolean;
}

/** What the board keeps while armed. */
interface ArmedProgram {
  readonly transactions: readonly SpiTransaction[];
  readonly onRun: (result: Uint8Array) => void;
  readonly quiet: boolean;
}

/** A host command queued on the board, in the order the host sent it. */
interface BoardCommand {
  /** Its last byte has reached the board (under a link model: request line time, half the turnaround). */
  arrived: boolean;
  /** Do it on the board; `chipFree` once the chip can take the next unit of work. */
  readonly perform: (chipFree: () => void) => void;
}

/** What a batch or a program run did on the chip. */
interface Execution {
  /** The bytes read, in order: fewer than asked when an IF cut the batch short or a LENGTH said so. */
  readonly reads: Uint8Array;
  /** Bytes clocked on SPI: the chip is busy for that long. */
  readonly spiBytes: number;
  /** The delays of the transactions clocked (an IF skips the rest's), µs: the chip is busy that much longer. */
  readonly delayUs: number;
  /** Transactions clocked (an IF skips the rest). */
  readonly transactions: number;
  /** An ifNonZero test stopped the batch. */
  readonly cutShort: boolean;
  /** An IF or LENGTH referred to a byte not available: the bridge answers EINVAL. */
  readonly badReference: boolean;
}

export class MockHal implements Hal {
  readonly name: string;
  readonly spi: SpiDevice;
  readonly interrupt: InterruptLine;
  readonly reset?: ResetLine;
  readonly log: SpiLog;
  /** Drop interrupt edges on the way to the host (missed-edge tests). The level stays readable. */
  dropInterruptEdges = false;

  private readonly clock: Clock;
  private readonly slave: SpiSlave;
  private readonly interruptSource: InterruptSource | undefined;
  private readonly linkModel: LinkModel | undefined;
  private readonly maxProgramBytes: number;
  private readonly transactionDelays: boolean;
  private readonly bytesOverTime: boolean;
  private readonly programExtensions: boolean;
  /** The link model's SPI clock (LinkModel.spiBytesPerSecond, default 1e6). */
  private get spiBytesPerSecond(): number {
    return this.linkModel?.spiBytesPerSecond ?? 1e6;
  }
  private readonly eventListeners = new Set<(event: HalEvent) => void>();
  private readonly interruptListeners = new Set<(asserted: boolean) => void>();
  private interruptLevel = false;
  private readonly faults: Fault[] = [];
  private runAnswersToLose = 0;
  private linkLost: string | undefined;
  private closed = false;
  private inFlight = 0;
  // Link model bookkeeping: when each direction of the link is next free.
  /** When each direction of the link is free of what it already carries. */
  private readonly uplink = { freeAt: 0 };
  private readonly downlink = { freeAt: 0 };
  // The board: host commands in arrival order, the chip they share with program runs.
  private readonly boardQueue: BoardCommand[] = [];
  private chipBusy = false;
  private program: ArmedProgram | undefined;
  /** Just armed, the last run was not cut short, or a batch ended with the interrupt asserted. */
  private runDue = false;
  /** The interrupt line was asserted since the last run (the sketch's ISR counts edges). */
  private edgeSinceRun = false;
  private unsubscribeInterrupt: (() => void) | undefined;

  constructor(options: MockHalOptions) {
    this.clock = options.clock;
    this.slave = options.slave;
    this.linkModel = options.linkModel;
    this.maxProgramBytes = options.maxProgramBytes ?? DEFAULT_MAX_PROGRAM_BYTES;
    this.transactionDelays = options.transactionDelays ?? true;
    this.bytesOverTime = options.bytesOverTime ?? false;
    this.programExtensions = this.maxProgramBytes > 0 && (options.programExtensions ?? true);
    this.name = options.name ?? 'mock';
    this.log = new SpiLog(options.logCapacity);
    const spiBytesPerSecond = this.spiBytesPerSecond;
    const spi: SpiDevice = {
      transfer: (batch) => this.transfer(batch),
      arm: (program, onRun, armOptions) => this.arm(program, onRun, armOptions),
      disarm: () => this.disarm(),
      runArmed: () => this.runArmed(),
      maxProgramBytes: this.maxProgramBytes,
      transactionDelays: this.transactionDelays,
      programExtensions: this.programExtensions,
    };
    // With a link model the chip sees a batch's effects when its last byte has been clocked
    // (transfer()), so a write of n bytes takes n SPI byte times. Without one, batches are instant.
    this.spi = this.linkModel ? { ...spi, minWriteMs: (bytes) => (bytes * 1000) / spiBytesPerSecond } : spi;
    const source = options.interrupt;
    this.interruptSource = source;
    this.interruptLevel = source?.interruptAsserted ?? false;
    const level = () => this.interruptLevel;
    const listeners = this.interruptListeners;
    this.interrupt = {
      get asserted() {
        return level();
      },
      onChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    if (source) {
      this.unsubscribeInterrupt = source.onInterruptChange((asserted) => this.chipInterruptChanged(asserted));
    }
    if (options.reset) {
      const target = options.reset;
      this.reset = {
        pulse: async (lowMs: number) => {
          this.ensureUsable();
          await this.delay(this.oneWayMs() + lowMs);
          target.hardReset();
        },
      };
    }
  }

  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }

  onEvent(listener: (event: HalEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.disarmBoard();
    this.unsubscribeInterrupt?.();
  }

  // ---- Fault injection ------------------------------------------------------------------------

  /**
   * The next `count` transfer() batches fail with `code`. `executed`: they still ran on the chip.
   * Program commands (arm, disarm, runArmed) are not affected.
   */
  injectFault(code: HalErrorCode, options: { count?: number; executed?: boolean } = {}): void {
    for (let i = 0; i < (options.count ?? 1); i++) this.faults.push({ code, executed: options.executed ?? false });
  }

  /**
   * The answers of the next `count` program runs are lost on the link: the runs happen on the chip,
   * onRun is not called (the host drops a corrupt answer; the driver notices from the next run).
   */
  loseRunAnswers(count = 1): void {
    this.runAnswersToLose += count;
  }

  /**
   * The serial link vanishes: every request fails with ELINKLOST until restoreLink(). An armed
   * program keeps running on the board; its answers are lost.
   */
  loseLink(reason = 'serial port closed'): void {
    this.linkLost = reason;
    this.emit({ type: 'link-lost', reason });
  }

  /**
   * The link is back. A board that reset has lost its program; one that did not is re-armed (the
   * HAL's resynchronisation), which counts as just armed.
   */
  restoreLink(boardReset = false): void {
    this.linkLost = undefined;
    if (boardReset) {
      this.disarmBoard();
    } else if (this.program) {
      this.runDue = true;
      this.wakeBoard();
    }
    this.emit({ type: 'link-restored', boardReset });
  }

  /** Requests issued but not yet answered: batches, and arm, disarm and runArmed commands. */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  // ---- SPI ------------------------------------------------------------------------------------

  private transfer(batch: readonly SpiTransaction[]): Promise<Uint8Array> {
    let delayUs: number;
    try {
      this.ensureUsable();
      delayUs = this.checkDelays(batch);
    } catch (error) {
      return Promise.reject(error);
    }
    let bytesWritten = 0;
    let bytesRead = 0;
    for (const t of batch) {
      const w = t.write?.length ?? 0;
      const r = t.read ?? 0;
      if (r < 0 || !Number.isInteger(r)) return Promise.reject(new HalError('EINVAL', `bad read count ${r}`));
      if (t.ifNonZero !== undefined || t.readLengthFrom !== undefined || extFlags(t) !== 0) {
        return Promise.reject(new HalError('EINVAL', 'ifNonZero, readLengthFrom, ifSame, ifDiffer and copy are for arm() programs only'));
      }
      bytesWritten += w + r; // MOSI clocks a byte for every byte read, too
      bytesRead += (t.duplex ? w : 0) + r;
    }
    const entry: SpiLogEntry = {
      issuedAt: this.clock.now(),
      executedAt: 0,
      completedAt: 0,
      transactions: batch.length,
      bytesWritten: bytesWritten,
      bytesRead,
      linkBytesUp: this.requestLinkBytes(batch),
      linkBytesDown: this.replyLinkBytes(bytesRead),
      batch,
    };
    const fault = this.faults.shift();
    this.requestIssued();
    return new Promise<Uint8Array>((resolve, reject) => {
      this.sendCommand(entry.linkBytesUp, (chipFree) => {
        // The chip is busy for the batch's SPI time and delays. With `bytesOverTime` its bytes are
        // clocked over that time, so the chip's own events (a frame landing, a transmission
        // ending, ERXWRPT moving) fall between them as on the board; else its effects land at
        // once at the end. Either way the answer is complete at the end.
        const startedAt = this.clock.now();
        const endsAt = startedAt + this.spiMs(bytesWritten) + delayUs / 1000;
        const executes = () => (!fault || fault.executed) && this.linkLost === undefined;
        const finish = (execution: Execution | undefined) => {
          entry.executedAt = this.clock.now();
          let result: Uint8Array | undefined;
          if (execution && this.linkLost === undefined) {
            result = execution.reads;
            // A level the host did not clear gives no edge: let the program look (§3.2).
            if (this.program && this.interruptSource?.interruptAsserted) this.runDue = true;
          }
          const answeredAt = this.sendReply(entry.linkBytesDown);
          chipFree();
          this.at(answeredAt, () => {
            this.inFlight--;
            entry.completedAt = this.clock.now();
            const lost = this.linkLost;
            const code = fault?.code ?? (lost !== undefined ? 'ELINKLOST' : undefined);
            if (code) entry.error = code;
            this.log.record(entry);
            if (code) reject(new HalError(code, code === 'ELINKLOST' ? `link lost: ${lost ?? 'injected'}` : `injected ${code}`));
            else resolve(result ?? new Uint8Array(bytesRead));
          });
        };
        if (!this.bytesOverTime) this.at(endsAt, () => finish(executes() ? this.execute(batch) : undefined));
        else if (!executes()) this.at(endsAt, () => finish(undefined));
        else this.executeOverTime(batch, startedAt, (execution) => this.at(endsAt, () => finish(execution)));
      });
    });
  }

  /**
   * Clock `batch` through the slave from `startedAt` on, each piece at the time its first byte is
   * clocked (the link model's SPI clock, plus delays), then `done` with the whole execution.
   */
  private executeOverTime(batch: readonly SpiTransaction[], startedAt: number, done: (execution: Execution) => void): void {
    const steps = this.executeSteps(batch);
    const step = () => {
      for (;;) {
        const next = steps.next();
        if (next.done) {
          done(next.value);
          return;
        }
        const at = startedAt + next.value;
        if (at > this.clock.now()) {
          this.clock.schedule(at - this.clock.now(), step);
          return;
        }
      }
    };
    step();
  }

  /** Clock `batch` through the slave at one instant (programs: the board runs them in one go). */
  private execute(batch: readonly SpiTransaction[]): Execution {
    const steps = this.executeSteps(batch);
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
    }
  }

  /**
   * Clock `batch` through the slave. IF and LENGTH (programs) refer to the batch's read bytes while
   * the board still holds them: read, and no more than 64 read so far (bridge-protocol.md §3); the
   * extensions to any of the first 64 once read.
   */
  private *executeSteps(batch: readonly SpiTransaction[]): Generator<number, Execution> {
    const reads = new Uint8Array(batchReadLength(batch));
    // Where in the batch's time the next byte is clocked (ms): yielded before each transaction and
    // every SPI_STEP_BYTES within a long one.
    const offset = () => this.spiMs(spiBytes + clocked) + delayUs / 1000;
    let clocked = 0;
    let o = 0;
    let spiBytes = 0;
    let delayUs = 0;
    let transactions = 0;
    let selected = false;
    let cutShort = false;
    let badReference = false;
    const held = () => reads.subarray(0, o <= REFERABLE_READ_BYTES ? o : 0);
    const kept = () => reads.subarray(0, Math.min(o, REFERABLE_READ_BYTES));
    for (const t of batch) {
      if (t.ifNonZero !== undefined) {
        const available = t.ifNonZero < held().length;
        if (!available) badReference = true;
        if (!available || reads[t.ifNonZero] === 0) {
          // Nothing more is clocked and chip-select is released.
          cutShort = true;
          break;
        }
      }
      // SAME and DIFFER after IF, as the sketch tests them.
      const test = extTest(t, kept());
      if (test !== 'run') {
        if (test === 'invalid') badReference = true;
        cutShort = true;
        break;
      }
      delayUs += t.delayUs ?? 0;
      if (t.delayUs) this.slave.spiDelay?.(t.delayUs);
      clocked = 0;
      yield offset();
      let read = t.read ?? 0;
      if (t.readLengthFrom !== undefined) {
        const computed = computedReadLength(t.readLengthFrom, held(), read, kept());
        if (computed === undefined) badReference = true;
        read = computed ?? 0;
      }
      let write = t.write;
      if (t.copy && write) {
        const value = keptValue(kept(), t.copy.from);
        if (value === undefined) {
          badReference = true;
          cutShort = true;
          break;
        }
        write = Uint8Array.from(write);
        write[t.copy.at] = value >> 8;
        write[t.copy.at + 1] = value & 0xff;
      }
      if (!selected) this.slave.spiSelect();
      selected = true;
      if (write) {
        for (const byte of write) {
          const miso = this.slave.spiExchange(byte);
          if (t.duplex) reads[o++] = miso;
          if (++clocked % SPI_STEP_BYTES === 0) yield offset();
        }
      }
      for (let i = 0; i < read; i++) {
        reads[o++] = this.slave.spiExchange(0x00);
        if (++clocked % SPI_STEP_BYTES === 0) yield offset();
      }
      clocked = 0;
      spiBytes += (t.write?.length ?? 0) + read;
      transactions++;
      if (!t.keepSelected) {
        this.slave.spiDeselect();
        selected = false;
      }
    }
    if (selected) this.slave.spiDeselect();
    return { reads: o === reads.length ? reads : reads.slice(0, o), spiBytes, delayUs, transactions, cutShort, badReference };
  }

  /** The batch's total delay in µs; EINVAL for a delay out of range, EUNSUPPORTED when delays are off. */
  private checkDelays(batch: readonly SpiTransaction[]): number {
    let us: number;
    try {
      us = batchDelayUs(batch);
    } catch (error) {
      throw new HalError('EINVAL', error instanceof Error ? error.message : String(error));
    }
    if (us > 0 && !this.transactionDelays) throw new HalError('EUNSUPPORTED', `${this.name} keeps no transaction delays`);
    return us;
  }

  // ---- Programs (docs/bridge-protocol.md §3.2) --------------------------------------------------

  private arm(program: readonly SpiTransaction[], onRun: (result: Uint8Array) => void, options: ArmOptions = {}): Promise<void> {
    try {
      this.ensureUsable();
      this.ensurePrograms();
      this.checkDelays(program);
      this.checkProgram(program);
    } catch (error) {
      return Promise.reject(error);
    }
    // The board keeps the bytes it was sent, not the caller's arrays.
    const transactions = program.map((t) => (t.write ? { ...t, write: Uint8Array.from(t.write) } : { ...t }));
    const armed: ArmedProgram = { transactions, onRun, quiet: options.quietInterrupts === true };
    return this.programCommand(this.requestLinkBytes(program), (finish) => {
      this.program = armed;
      // Just armed: packets may already wait.
      this.runDue = true;
      this.edgeSinceRun = false;
      finish();
    });
  }

  private disarm(): Promise<void> {
    try {
      this.ensureUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    // A board without programs has nothing armed: done.
    if (this.maxProgramBytes === 0) return Promise.resolve();
    return this.programCommand(this.requestLinkBytes([]), (finish) => {
      this.disarmBoard();
      finish();
    });
  }

  private runArmed(): Promise<void> {
    try {
      this.ensureUsable();
      this.ensurePrograms();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.programCommand(this.requestLinkBytes([]), (finish) => {
      const program = this.program;
      // The run's answer goes before the command's own.
      if (program) this.run(program, finish);
      else finish();
    });
  }

  private ensurePrograms(): void {
    if (this.maxProgramBytes === 0) throw new HalError('EUNSUPPORTED', `${this.name} runs no programs`);
  }

  /** A program the board can keep: well formed, and small enough encoded as the bridge sends it. */
  private checkProgram(program: readonly SpiTransaction[]): void {
    for (const t of program) {
      const r = t.read ?? 0;
      if (r < 0 || !Number.isInteger(r)) throw new HalError('EINVAL', `bad read count ${r}`);
    }
    try {
      encodeArm(0, program, {}, { shortHeaders: true, pairs: true });
    } catch (error) {
      throw new HalError('EINVAL', error instanceof Error ? error.message : String(error));
    }
    const ext = program.some((t) => extFlags(t) !== 0);
    if (ext && !this.programExtensions) throw new HalError('EUNSUPPORTED', `${this.name} runs no program extensions (ifSame, ifDiffer, copy, minusAt)`);
    const bytes = transactionsLength(program, { shortHeaders: true, pairs: true, ext });
    if (bytes > this.maxProgramBytes) {
      throw new HalError('EINVAL', `a program of ${bytes} bytes: ${this.name} runs at most ${this.maxProgramBytes}`);
    }
  }

  /** arm, disarm, runArmed: a request whose answer is one DONE. `act` calls `finish` when it is done. */
  private programCommand(requestBytes: number, act: (finish: () => void) => void): Promise<void> {
    this.requestIssued();
    return new Promise<void>((resolve, reject) => {
      this.sendCommand(requestBytes, (chipFree) => {
        const finish = () => {
          const replyBytes = this.replyLinkBytes(0);
          const answeredAt = this.sendReply(replyBytes);
          chipFree();
          this.at(answeredAt, () => {
            this.inFlight--;
            this.log.recordCommand(requestBytes, replyBytes);
            const lost = this.linkLost;
            if (lost !== undefined) reject(new HalError('ELINKLOST', `link lost: ${lost}`));
            else resolve();
          });
        };
        if (this.linkLost !== undefined) finish();
        else act(finish);
      });
    });
  }

  /**
   * One run: it executes when it starts (its length is known only once it has read the packet
   * header), keeps the chip for its SPI time, and its answer follows on the link. `chipFree` once
   * that answer is queued.
   */
  private run(program: ArmedProgram, chipFree: () => void): void {
    this.runDue = false;
    this.edgeSinceRun = false;
    const startedAt = this.clock.now();
    const execution = this.execute(program.transactions);
    // Again at once, unless an IF cut it short (nothing to do) or it is faulty (the sketch's rule).
    if (!execution.cutShort && !execution.badReference) this.runDue = true;
    const entry: SpiLogEntry = {
      issuedAt: startedAt,
      executedAt: startedAt,
      completedAt: 0,
      transactions: execution.transactions,
      bytesWritten: execution.spiBytes,
      bytesRead: execution.reads.length,
      linkBytesUp: 0,
      linkBytesDown: this.replyLinkBytes(execution.reads.length),
      batch: program.transactions,
      run: true,
    };
    this.at(startedAt + this.spiMs(execution.spiBytes) + execution.delayUs / 1000, () => {
      const answeredAt = this.sendReply(entry.linkBytesDown);
      chipFree();
      this.at(answeredAt, () => {
        entry.completedAt = this.clock.now();
        if (this.linkLost !== undefined) {
          entry.error = 'ELINKLOST';
        } else if (this.runAnswersToLose > 0) {
          this.runAnswersToLose--;
          entry.error = 'EPROTO'; // the host's CRC or DONE count check drops it
        }
        this.log.record(entry);
        if (entry.error === undefined && !this.closed) program.onRun(execution.reads);
      });
    });
  }

  private disarmBoard(): void {
    this.program = undefined;
    this.runDue = false;
    this.edgeSinceRun = false;
  }

  // ---- The board: one unit of work at a time on the chip ----------------------------------------

  private requestIssued(): void {
    this.inFlight++;
    this.log.totals.maxInFlight = Math.max(this.log.totals.maxInFlight, this.inFlight);
  }

  /** Queue a host command; it is performed once it has arrived and the chip is free. */
  private sendCommand(requestBytes: number, perform: BoardCommand['perform']): void {
    const command: BoardCommand = { arrived: false, perform };
    this.boardQueue.push(command);
    // Always through the clock, even without a link model: a command never runs inside its call.
    this.clock.schedule(this.sendRequest(requestBytes) - this.clock.now(), () => {
      command.arrived = true;
      this.boardStep();
    });
  }

  /**
   * The board's main loop, one unit per call: a host command that has arrived (the sketch looks at
   * its receive ring first), else a program run if one is due.
   */
  private boardStep(): void {
    if (this.chipBusy) return;
    const head = this.boardQueue[0];
    if (head?.arrived) {
      this.boardQueue.shift();
      this.chipBusy = true;
      head.perform(() => this.chipFreed());
    } else if (this.program && this.runIsDue()) {
      this.chipBusy = true;
      this.run(this.program, () => this.chipFreed());
    }
  }

  private chipFreed(): void {
    this.chipBusy = false;
    // A command not yet arrived steps the board when it arrives.
    if (this.boardQueue[0]?.arrived || (this.program && this.runIsDue())) this.wakeBoard();
  }

  private runIsDue(): boolean {
    return this.runDue || this.edgeSinceRun;
  }

  /** A later step at this instant: one unit per timer keeps runs in order with everything else. */
  private wakeBoard(): void {
    this.clock.schedule(0, () => this.boardStep());
  }

  // ---- Link model -------------------------------------------------------------------------------

  /** Run `action` at `time`: now if it is due (everything, without a link model). */
  private at(time: number, action: () => void): void {
    const delay = time - this.clock.now();
    if (delay > 0) this.clock.schedule(delay, action);
    else action();
  }

  /** The chip is busy this long clocking `bytes` (0 without a link model: batches are instant). */
  private spiMs(bytes: number): number {
    return this.linkModel ? (bytes * 1000) / this.spiBytesPerSecond : 0;
  }

  /** Request bytes on the link for a command carrying `transactions` (none: a bare command). */
  private requestLinkBytes(transactions: readonly SpiTransaction[]): number {
    const m = this.linkModel;
    if (!m) return 0;
    let payload = m.batchOverheadBytes ?? 4;
    if (m.transactionBytes) {
      payload += m.transactionBytes(transactions);
    } else {
      const txnOverhead = m.transactionOverheadBytes ?? 2;
      for (const t of transactions) payload += txnOverhead + (t.write?.length ?? 0);
    }
    return this.chunked(payload, m.requestChunkOverheadBytes ?? 0);
  }

  /** Reply bytes on the link for an answer carrying `bytesRead`, completion record included. */
  private replyLinkBytes(bytesRead: number): number {
    const m = this.linkModel;
    if (!m) return 0;
    const overhead = m.replyOverheadBytes ?? m.batchOverheadBytes ?? 4;
    return this.chunked(bytesRead, m.replyChunkOverheadBytes ?? 0, m.replyChunkBytes) + (bytesRead > 0 ? (m.replyWithDataOverheadBytes ?? overhead) : overhead);
  }

  private chunked(bytes: number, overhead: number, chunk = this.linkModel?.chunkBytes): number {
    return bytes + (chunk ? Math.ceil(bytes / chunk) * overhead : 0);
  }

  /** Send a request up the link now; returns when the board has all of it. */
  private sendRequest(bytes: number): number {
    return this.crossLink(this.uplink, bytes);
  }

  /** Send an answer down the link from now (after every earlier one); returns when the host has it. */
  private sendReply(bytes: number): number {
    return this.crossLink(this.downlink, bytes);
  }

  /** `bytes` over one direction, after what it already carries: when they are across. */
  private crossLink(direction: { freeAt: number }, bytes: number): number {
    const m = this.linkModel;
    const now = this.clock.now();
    if (!m) return now;
    direction.freeAt = Math.max(now, direction.freeAt) + (bytes * 1000) / m.bytesPerSecond;
    return direction.freeAt + m.turnaroundMs / 2;
  }

  private oneWayMs(): number {
    return (this.linkModel?.turnaroundMs ?? 0) / 2;
  }

  // ---- Interrupt line ---------------------------------------------------------------------------

  private chipInterruptChanged(asserted: boolean): void {
    // The board sees the pin at once; an assertion since the last run is a reason to run (§3.2).
    if (asserted && this.program) {
      this.edgeSinceRun = true;
      this.wakeBoard();
    }
    this.mirrorInterrupt(asserted, this.program?.quiet === true);
  }

  /** The host sees the level one way later; `quiet`: armed with quietInterrupts, no event is sent. */
  private mirrorInterrupt(asserted: boolean, quiet: boolean): void {
    const apply = () => {
      if (this.interruptLevel === asserted) return;
      this.interruptLevel = asserted;
      if (this.dropInterruptEdges || quiet) return;
      for (const listener of [...this.interruptListeners]) listener(asserted);
    };
    const latency = this.oneWayMs();
    if (latency > 0) this.clock.schedule(latency, apply);
    else apply();
  }

  private ensureUsable(): void {
    if (this.closed) throw new HalError('ECLOSED', 'HAL closed');
    if (this.linkLost !== undefined) throw new HalError('ELINKLOST', `link lost: ${this.linkLost}`);
  }

  private emit(event: HalEvent): void {
    for (const listener of [...this.eventListeners]) listener(event);
  }
}
