import {
  HalError,
  type Hal,
  type HalErrorCode,
  type HalEvent,
  type InterruptLine,
  type ResetLine,
  type SpiDevice,
  type SpiTransaction,
} from '../contract.js';
import type { Clock } from '../../src/time/clock.js';

/**
 * The mock HAL: SPI batches run against an in-process SPI slave (an emulated chip), on the
 * injected Clock. An optional link model makes it behave like the serial bridge: bytes take time
 * each way, each batch pays a turnaround, several batches can be in flight and they execute in
 * order. Everything that crosses the "link" is logged, so tests and benchmarks can count round
 * trips and bytes.
 */

/** What the mock needs from an emulated chip: the byte-level SPI slave and its pins. */
export interface SpiSlave {
  spiSelect(): void;
  spiExchange(mosi: number): number;
  spiDeselect(): void;
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
  /** Framing bytes per SPI transaction in the request (flags, lengths). Default 2. */
  transactionOverheadBytes?: number;
  /**
   * The link carries its payload in frames of at most this many bytes, each paying the chunk
   * overheads below (default: no chunking).
   */
  chunkBytes?: number;
  /** Bytes added per request chunk (delimiter, header, CRC). Default 0. */
  requestChunkOverheadBytes?: number;
  /** Bytes added per reply chunk carrying read data. Default 0. */
  replyChunkOverheadBytes?: number;
  /** SPI clock on the board, bytes per second (8 MHz ≈ 1e6). The chip is busy that long. Default 1e6. */
  spiBytesPerSecond?: number;
}

/**
 * The serial bridge (docs/bridge-protocol.md) as a link model: a request is `0x10 id` then per
 * transaction `flags wlen:u16 rlen:u16 write[]`, carried in DATA frames of ≤64 bytes that cost 6
 * bytes each (COBS, delimiter, type, seq, CRC-16); read bytes come back in DATA frames of ≤64 bytes
 * at 9 bytes each, then a 12-byte DONE. Not modelled: the board's credit ACKs (9 bytes per
 * ~250 request bytes consumed, on the reply direction) and INT events.
 */
export function bridgeLinkModel(bytesPerSecond: number, turnaroundMs: number): LinkModel {
  return {
    bytesPerSecond,
    turnaroundMs,
    batchOverheadBytes: 2,
    replyOverheadBytes: 12,
    transactionOverheadBytes: 5,
    chunkBytes: 64,
    requestChunkOverheadBytes: 6,
    replyChunkOverheadBytes: 9,
  };
}

/** One batch as it crossed the link. */
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
  /** Batches are round trips: the host cannot see a batch's result before it completes. */
  roundTrips: number;
  /** Most batches that were in flight at the same time. */
  maxInFlight: number;
}

export class SpiLog {
  /** Recent entries (bounded by `capacity`); totals count everything. */
  readonly entries: SpiLogEntry[] = [];
  readonly totals: SpiLogTotals = emptyTotals();

  constructor(public capacity = 10_000) {}

  record(entry: SpiLogEntry): void {
    this.totals.batches++;
    this.totals.roundTrips++;
    this.totals.transactions += entry.transactions;
    this.totals.bytesWritten += entry.bytesWritten;
    this.totals.bytesRead += entry.bytesRead;
    this.totals.linkBytesUp += entry.linkBytesUp;
    this.totals.linkBytesDown += entry.linkBytesDown;
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
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
    };
  }

  clear(): void {
    this.entries.length = 0;
    Object.assign(this.totals, emptyTotals());
  }
}

function emptyTotals(): SpiLogTotals {
  return { batches: 0, transactions: 0, bytesWritten: 0, bytesRead: 0, linkBytesUp: 0, linkBytesDown: 0, roundTrips: 0, maxInFlight: 0 };
}

export interface MockHalOptions {
  clock: Clock;
  slave: SpiSlave;
  interrupt?: InterruptSource;
  /** Called when the reset line is released after a pulse. */
  reset?: { hardReset(): void };
  linkModel?: LinkModel;
  name?: string;
  logCapacity?: number;
}

interface Fault {
  code: HalErrorCode;
  /** The batch ran on the chip but its answer was lost (a timeout after execution). */
  executed: boolean;
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
  private readonly linkModel: LinkModel | undefined;
  /** The link model's SPI clock (LinkModel.spiBytesPerSecond, default 1e6). */
  private get spiBytesPerSecond(): number {
    return this.linkModel?.spiBytesPerSecond ?? 1e6;
  }
  private readonly eventListeners = new Set<(event: HalEvent) => void>();
  private readonly interruptListeners = new Set<(asserted: boolean) => void>();
  private interruptLevel = false;
  private readonly faults: Fault[] = [];
  private linkLost: string | undefined;
  private closed = false;
  private inFlight = 0;
  // Link model bookkeeping: when each resource is next free.
  private uplinkFreeAt = 0;
  private chipFreeAt = 0;
  private downlinkFreeAt = 0;
  private unsubscribeInterrupt: (() => void) | undefined;

  constructor(options: MockHalOptions) {
    this.clock = options.clock;
    this.slave = options.slave;
    this.linkModel = options.linkModel;
    this.name = options.name ?? 'mock';
    this.log = new SpiLog(options.logCapacity);
    const spiBytesPerSecond = this.spiBytesPerSecond;
    // With a link model the chip sees a batch's effects when its last byte has been clocked
    // (schedule()), so a write of n bytes takes n SPI byte times. Without one, batches are instant.
    this.spi = this.linkModel
      ? { transfer: (batch) => this.transfer(batch), minWriteMs: (bytes) => (bytes * 1000) / spiBytesPerSecond }
      : { transfer: (batch) => this.transfer(batch) };
    const source = options.interrupt;
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
      this.unsubscribeInterrupt = source.onInterruptChange((asserted) => this.mirrorInterrupt(asserted));
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
    this.unsubscribeInterrupt?.();
  }

  // ---- Fault injection ------------------------------------------------------------------------

  /** The next `count` batches fail with `code`. `executed`: they still ran on the chip. */
  injectFault(code: HalErrorCode, options: { count?: number; executed?: boolean } = {}): void {
    for (let i = 0; i < (options.count ?? 1); i++) this.faults.push({ code, executed: options.executed ?? false });
  }

  /** The serial link vanishes: every batch fails with ELINKLOST until restoreLink(). */
  loseLink(reason = 'serial port closed'): void {
    this.linkLost = reason;
    this.emit({ type: 'link-lost', reason });
  }

  restoreLink(boardReset = false): void {
    this.linkLost = undefined;
    this.emit({ type: 'link-restored', boardReset });
  }

  /** Batches issued but not yet answered. */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  // ---- SPI ------------------------------------------------------------------------------------

  private transfer(batch: readonly SpiTransaction[]): Promise<Uint8Array> {
    try {
      this.ensureUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    let bytesWritten = 0;
    let bytesRead = 0;
    for (const t of batch) {
      const w = t.write?.length ?? 0;
      const r = t.read ?? 0;
      if (r < 0 || !Number.isInteger(r)) return Promise.reject(new HalError('EINVAL', `bad read count ${r}`));
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
      linkBytesUp: 0,
      linkBytesDown: 0,
      batch,
    };
    const fault = this.faults.shift();
    this.inFlight++;
    this.log.totals.maxInFlight = Math.max(this.log.totals.maxInFlight, this.inFlight);
    const timing = this.schedule(batch, bytesRead);
    entry.linkBytesUp = timing.linkBytesUp;
    entry.linkBytesDown = timing.linkBytesDown;
    return new Promise<Uint8Array>((resolve, reject) => {
      let result: Uint8Array | undefined;
      this.clock.schedule(timing.executeAt - this.clock.now(), () => {
        entry.executedAt = this.clock.now();
        if (fault && !fault.executed) return;
        if (this.linkLost !== undefined) return;
        result = this.execute(batch, bytesRead);
      });
      this.clock.schedule(timing.completeAt - this.clock.now(), () => {
        this.inFlight--;
        entry.completedAt = this.clock.now();
        const lost = this.linkLost;
        const code = fault?.code ?? (lost !== undefined ? 'ELINKLOST' : undefined);
        if (code) entry.error = code;
        this.log.record(entry);
        if (code) reject(new HalError(code, code === 'ELINKLOST' ? `link lost: ${lost ?? 'injected'}` : `injected ${code}`));
        else resolve(result ?? new Uint8Array(bytesRead));
      });
    });
  }

  private execute(batch: readonly SpiTransaction[], bytesRead: number): Uint8Array {
    const out = new Uint8Array(bytesRead);
    let o = 0;
    let selected = false;
    for (const t of batch) {
      if (!selected) this.slave.spiSelect();
      selected = true;
      if (t.write) {
        for (const byte of t.write) {
          const miso = this.slave.spiExchange(byte);
          if (t.duplex) out[o++] = miso;
        }
      }
      for (let i = 0; i < (t.read ?? 0); i++) out[o++] = this.slave.spiExchange(0x00);
      if (!t.keepSelected) {
        this.slave.spiDeselect();
        selected = false;
      }
    }
    if (selected) this.slave.spiDeselect();
    return out;
  }

  /** When a batch reaches the chip and when its answer is back, under the link model. */
  private schedule(batch: readonly SpiTransaction[], bytesRead: number): { executeAt: number; completeAt: number; linkBytesUp: number; linkBytesDown: number } {
    const now = this.clock.now();
    const m = this.linkModel;
    if (!m) return { executeAt: now, completeAt: now, linkBytesUp: 0, linkBytesDown: 0 };
    const perByte = 1000 / m.bytesPerSecond;
    const batchOverhead = m.batchOverheadBytes ?? 4;
    const txnOverhead = m.transactionOverheadBytes ?? 2;
    let requestPayload = batchOverhead;
    let spiBytes = 0;
    for (const t of batch) {
      requestPayload += txnOverhead + (t.write?.length ?? 0);
      spiBytes += (t.write?.length ?? 0) + (t.read ?? 0);
    }
    const chunked = (bytes: number, overhead: number) => bytes + (m.chunkBytes ? Math.ceil(bytes / m.chunkBytes) * overhead : 0);
    const requestBytes = chunked(requestPayload, m.requestChunkOverheadBytes ?? 0);
    const replyBytes = chunked(bytesRead, m.replyChunkOverheadBytes ?? 0) + (m.replyOverheadBytes ?? batchOverhead);
    const sendStart = Math.max(now, this.uplinkFreeAt);
    this.uplinkFreeAt = sendStart + requestBytes * perByte;
    // The batch runs on the chip once its request has arrived and the chip is free, for as long
    // as its bytes take to clock; its effects land (atomically) at the end of that.
    const executeAt = Math.max(this.uplinkFreeAt + m.turnaroundMs / 2, this.chipFreeAt) + (spiBytes * 1000) / this.spiBytesPerSecond;
    this.chipFreeAt = executeAt;
    const answerStart = Math.max(this.chipFreeAt, this.downlinkFreeAt);
    this.downlinkFreeAt = answerStart + replyBytes * perByte;
    return { executeAt, completeAt: this.downlinkFreeAt + m.turnaroundMs / 2, linkBytesUp: requestBytes, linkBytesDown: replyBytes };
  }

  private oneWayMs(): number {
    return (this.linkModel?.turnaroundMs ?? 0) / 2;
  }

  private mirrorInterrupt(asserted: boolean): void {
    const apply = () => {
      if (this.interruptLevel === asserted) return;
      this.interruptLevel = asserted;
      if (this.dropInterruptEdges) return;
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
