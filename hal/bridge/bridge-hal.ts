/**
 * The HAL over the serial bridge (docs/bridge-protocol.md): a chip driver's SPI batches, INT line,
 * reset line and the board's spare pins, carried over a serialport stream to the bridge sketch.
 *
 * Sending side: requests are encoded into one command stream, cut into ≤64-byte DATA frames and
 * written as far as the board's byte credit allows (several requests in flight). Frames stay
 * queued until the board's `ack` passes them; NAK or a stalled ack resends from the oldest
 * (go-back-N). Receiving side: replies come back in request order; a lost reply is detected by id
 * or length and the request is resubmitted only if it is retryable. A silent board gets a PING,
 * then a HELLO resync; a vanished port is reopened and announced with link-lost/link-restored.
 *
 * Protocol version 2 boards also take SHORT transaction headers and a *program* (§3.2): the ARM
 * command's id then belongs to the program, and DATA/DONE frames under it are runs the board made
 * by itself, between any two replies. Version 1 boards still work, without programs. A board with
 * idle fill (caps bit 10) is told after every HELLO how many zeros push its replies through the
 * USB-serial chip (`idleFill`).
 */
import { SerialPortStream } from '@serialport/stream';
import type { BindingInterface } from './serialport-types.js';
import { SerialPort } from 'serialport';
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { RealClock } from '../../src/time/real-clock.js';
import {
  HalError,
  type ArmOptions,
  type Gpio,
  type Hal,
  type HalErrorCode,
  type HalEvent,
  type InterruptLine,
  type PinMode,
  type ResetLine,
  type SpiDevice,
  type SpiTransaction,
} from '../../src/drivers/hal.js';
import { BRIDGE_DEFAULTS, idleFillForBoard } from './options.js';
import {
  BoardFrame,
  Capability,
  Command,
  EventKind,
  FrameDecoder,
  HostHelloOption,
  MAX_PAYLOAD,
  MIN_PROTOCOL_VERSION,
  NO_REQUEST_ID,
  PROTOCOL_VERSION,
  PinModeCode,
  REFERABLE_READ_BYTES,
  STATUS_NAMES,
  Status,
  batchDelayUs,
  batchReadLength,
  boardReplyWireBytes,
  encodeArm,
  encodeCommand,
  encodeHostData,
  encodeHostHello,
  encodeSetBaud,
  encodeSetFill,
  encodeSpiCommand,
  hostWireBytes,
  parseBoardFrame,
  parseDone,
  parseHello,
  transactionsLength,
  type BoardFrameView,
  type EncodeOptions,
  type Hello,
} from './protocol.js';

export interface BridgeHalOptions {
  /** Serial port, e.g. /dev/ttyACM0 (or a simulated board's path with its `binding`). */
  readonly path: string;
  readonly baudRate?: number;
  /** serialport binding; default: the operating system's (serialport's autodetect). */
  readonly binding?: BindingInterface;
  /** Timeouts and delay() run on this clock (a VirtualClock in simulations). Default: real time. */
  readonly clock?: Clock;
  /**
   * May this batch run twice? Asked when its reply was lost after the board executed it. A batch
   * that only reads registers, or that sets the chip's read/write pointer before a buffer access,
   * is; one that pops a FIFO or bumps a pointer is not. Default: never.
   */
  readonly isRetryable?: (batch: readonly SpiTransaction[]) => boolean;
  readonly requestTimeoutMs?: number;
  readonly retransmitMs?: number;
  readonly retransmitLimit?: number;
  readonly helloRetryMs?: number;
  readonly openTimeoutMs?: number;
  readonly reconnectMs?: number;
  readonly maxRetries?: number;
  readonly maxInFlight?: number;
  /** The board's fastest SPI clock in bytes/s (BRIDGE_DEFAULTS.spiBytesPerSecond: a 16 MHz AVR). */
  readonly spiBytesPerSecond?: number;
  /**
   * Zeros the board sends after each burst of frames (SET_FILL, 0..255; 0 = off, the default), so
   * the USB-serial chip forwards a reply at once instead of on its timer: `idleFillFor(chip)`
   * (options.ts) gives the value for a 16U2 or an FTDI chip; 'auto' takes it from the board the
   * HELLO names (`idleFillForBoard`: the Uno and Mega's 16U2, the Nano's FT232RL).
   */
  readonly idleFill?: number | 'auto';
  /** Name in `hal.name` (default: `bridge:<board name>@<path>`). */
  readonly name?: string;
}

export interface BridgeStats {
  framesSent: number;
  bytesSent: number;
  bytesReceived: number;
  retransmittedFrames: number;
  naks: number;
  badFrames: number;
  lostReplies: number;
  retries: number;
  timeouts: number;
  resyncs: number;
  reconnects: number;
  /** Most bytes ever outstanding against the board's window (≤ window). */
  peakCreditUsed: number;
  /** Program runs handed to `onRun`. */
  runsReported: number;
  /** Program runs dropped: a frame of the answer was lost or corrupt, or its DONE count was off. */
  runsLost: number;
}

interface Reply {
  readonly data: Uint8Array;
  readonly value: number;
}

/** A program the host wants on the board (SpiDevice.arm). */
interface Program {
  readonly transactions: readonly SpiTransaction[];
  readonly onRun: (result: Uint8Array) => void;
  readonly quiet: boolean;
  /** The id the board answers its runs under; undefined while the board does not have it. */
  id: number | undefined;
}

interface Request {
  id: number;
  readonly encode: (id: number) => Uint8Array;
  readonly readLength: number;
  /** An SPI batch: the DONE value is the read count, checked against the data received. */
  readonly spi: boolean;
  readonly retryable: boolean;
  /** Stop packing after this request until it is answered (SET_BAUD). */
  readonly barrier?: boolean;
  /** ARM (this program) or DISARM (null): the board's program once the command is done. */
  readonly arms?: Program | null;
  readonly onDone?: () => Promise<void> | void;
  retries: number;
  firstFrame: number;
  lastFrame: number;
  /** Time the board spends blocked on it besides line and SPI time (CHIP_RESET, DELAYs). */
  readonly boardMs: number;
  budgetMs: number;
  chunks: Uint8Array[];
  received: number;
  resolve(reply: Reply): void;
  reject(error: HalError): void;
}

interface SubmitSpec {
  readonly encode: (id: number) => Uint8Array;
  readonly readLength?: number;
  readonly spi?: boolean;
  readonly retryable: boolean;
  readonly barrier?: boolean;
  readonly arms?: Program | null;
  readonly extraMs?: number;
  readonly onDone?: () => Promise<void> | void;
  /** Queue ahead of everything waiting (the re-ARM after a HELLO). */
  readonly first?: boolean;
}

interface QueuedFrame {
  readonly abs: number;
  readonly wire: Uint8Array;
}

type LinkState = 'connecting' | 'ready' | 'resyncing' | 'down' | 'closed';

const PIN_MODE_CODES: Record<PinMode, number> = {
  input: PinModeCode.INPUT,
  'input-pullup': PinModeCode.INPUT_PULLUP,
  output: PinModeCode.OUTPUT,
  analog: PinModeCode.INPUT,
  pwm: PinModeCode.OUTPUT,
};
/** Go-back-N with an 8-bit seq: fewer than half the sequence space in flight. */
const MAX_FRAMES_IN_FLIGHT = 127;

export class BridgeHal implements Hal {
  readonly spi: SpiDevice;
  readonly interrupt: InterruptLine;
  readonly reset: ResetLine;
  readonly gpio: Gpio;
  readonly stats: BridgeStats = {
    framesSent: 0, bytesSent: 0, bytesReceived: 0, retransmittedFrames: 0, naks: 0, badFrames: 0, lostReplies: 0,
    retries: 0, timeouts: 0, resyncs: 0, reconnects: 0, peakCreditUsed: 0, runsReported: 0, runsLost: 0,
  };
  /** The board's last HELLO. */
  hello: Hello | undefined;

  private readonly clock: Clock;
  private readonly settings: Required<Omit<BridgeHalOptions, 'binding' | 'clock' | 'isRetryable' | 'name' | 'path'>>;
  private readonly isRetryable: (batch: readonly SpiTransaction[]) => boolean;
  private baudRate: number;
  private state: LinkState = 'connecting';
  private port: SerialPortStream | undefined;
  private readonly decoder: FrameDecoder;
  private readonly eventListeners = new Set<(event: HalEvent) => void>();
  private readonly intListeners = new Set<(asserted: boolean) => void>();
  private readonly pinListeners = new Set<(pin: number, value: 0 | 1) => void>();
  private intLevel = false;
  private intEdges: number | undefined;
  private readonly reportedPins = new Set<number>();

  // Requests.
  private waiting: Request[] = [];
  private inflight: Request[] = [];
  private nextId = 0;
  private packScheduled = false;
  private headTimer: TimerHandle | undefined;
  private probing = false;

  // Programs: the one the host wants armed, and the answer of the run arriving now.
  private program: Program | undefined;
  private runChunks: Uint8Array[] = [];
  private runReceived = 0;
  /** A frame was lost in the middle of the run arriving now. */
  private runDamaged = false;

  // Go-back-N sender and credits.
  private frames: QueuedFrame[] = [];
  private cursor = 0;
  private ackedAbs = 0;
  private nextAbs = 0;
  private transmittedAbs = 0;
  private streamTail: number[] = [];
  private window = 0;
  private sentTotal = 0;
  private consumedTotal = 0;
  private lastConsumed16 = 0;
  private retransmitTimer: TimerHandle | undefined;
  private stalledRetransmits = 0;
  private lastNakAck = -1;

  // HELLO.
  private helloTimer: TimerHandle | undefined;
  private helloAttempts = 0;
  private helloSeq = 0;
  private helloDeadline = 0;
  private sawBootHello = false;
  /** A link-lost for the current board reset has been emitted. */
  private resetAnnounced = false;
  /** During a resync: the last frame was an ACK with an ack of the stream the HELLO cuts off. */
  private afterOldStreamAck = false;
  /**
   * During a resync: a HELLO answer came right after such an ACK — the report the board sends
   * before it answers a HELLO (§2) — so `ackedAbs` is what the board received, not a lower bound.
   */
  private oldStreamReported = false;
  private connectWaiter: { resolve(): void; reject(error: Error): void } | undefined;
  private reconnectTimer: TimerHandle | undefined;

  private constructor(private readonly options: BridgeHalOptions) {
    this.clock = options.clock ?? new RealClock();
    this.settings = {
      baudRate: options.baudRate ?? BRIDGE_DEFAULTS.baudRate,
      requestTimeoutMs: options.requestTimeoutMs ?? BRIDGE_DEFAULTS.requestTimeoutMs,
      retransmitMs: options.retransmitMs ?? BRIDGE_DEFAULTS.retransmitMs,
      retransmitLimit: options.retransmitLimit ?? BRIDGE_DEFAULTS.retransmitLimit,
      helloRetryMs: options.helloRetryMs ?? BRIDGE_DEFAULTS.helloRetryMs,
      openTimeoutMs: options.openTimeoutMs ?? BRIDGE_DEFAULTS.openTimeoutMs,
      reconnectMs: options.reconnectMs ?? BRIDGE_DEFAULTS.reconnectMs,
      maxRetries: options.maxRetries ?? BRIDGE_DEFAULTS.maxRetries,
      maxInFlight: options.maxInFlight ?? BRIDGE_DEFAULTS.maxInFlight,
      spiBytesPerSecond: options.spiBytesPerSecond ?? BRIDGE_DEFAULTS.spiBytesPerSecond,
      idleFill: options.idleFill ?? BRIDGE_DEFAULTS.idleFill,
    };
    const { idleFill } = this.settings;
    if (idleFill !== 'auto' && (!Number.isInteger(idleFill) || idleFill < 0 || idleFill > 0xff)) throw new RangeError(`idleFill ${idleFill}: 0 to 255 bytes`);
    this.baudRate = this.settings.baudRate;
    this.isRetryable = options.isRetryable ?? (() => false);
    this.decoder = new FrameDecoder(
      (body) => this.onFrame(body),
      () => this.onBadFrame(),
      undefined,
      { endedFrames: true },
    );
    const maxProgramBytes = () => this.maxProgramBytes;
    const transactionDelays = () => this.transactionDelays;
    this.spi = {
      transfer: (batch) => this.transfer(batch),
      minWriteMs: (bytes) => this.minWriteMs(bytes),
      arm: (program, onRun, armOptions) => this.arm(program, onRun, armOptions),
      disarm: () => this.disarm(),
      runArmed: () => this.runArmed(),
      get maxProgramBytes() {
        return maxProgramBytes();
      },
      get transactionDelays() {
        return transactionDelays();
      },
    };
    const intLevel = () => this.intLevel;
    this.interrupt = {
      get asserted() {
        return intLevel();
      },
      onChange: (listener) => {
        this.intListeners.add(listener);
        return () => this.intListeners.delete(listener);
      },
    };
    this.reset = {
      pulse: async (lowMs) => {
        const ms = Math.max(0, Math.min(0xffff, Math.round(lowMs)));
        await this.submit({ encode: (id) => encodeCommand(Command.CHIP_RESET, id, ms & 0xff, ms >>> 8), retryable: true, extraMs: ms });
      },
    };
    this.gpio = this.makeGpio();
  }

  /** Open the port, say HELLO and resolve once the board answered. */
  static async open(options: BridgeHalOptions): Promise<BridgeHal> {
    const hal = new BridgeHal(options);
    try {
      await hal.connect();
    } catch (error) {
      await hal.close();
      throw error;
    }
    return hal;
  }

  get name(): string {
    return this.options.name ?? `bridge:${this.hello?.name ?? '?'}@${this.options.path}`;
  }

  /** Ready to carry requests (false while the port is gone or a resync runs). */
  get ready(): boolean {
    return this.state === 'ready';
  }

  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }

  onEvent(listener: (event: HalEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.cancelTimers();
    this.reconnectTimer?.cancel();
    this.failAll('ECLOSED', 'bridge closed');
    this.connectWaiter?.reject(new HalError('ECLOSED', 'bridge closed'));
    await this.closePort();
  }

  /** Switch both ends to `baud` (the board must advertise SET_BAUD). */
  async setBaud(baud: number): Promise<void> {
    await this.submit({
      encode: (id) => encodeSetBaud(id, baud),
      retryable: false,
      barrier: true,
      onDone: async () => {
        this.baudRate = baud;
        await new Promise<void>((resolve, reject) => this.port?.update({ baudRate: baud }, (error) => (error ? reject(error) : resolve())));
      },
    });
  }

  /** Round trip through the board's command stream; resolves with the board's free ring bytes. */
  async ping(): Promise<number> {
    return (await this.submit({ encode: (id) => encodeCommand(Command.PING, id), retryable: true })).value;
  }

  // ---- requests ---------------------------------------------------------------------------------

  /**
   * A floor on the time `bytes` written in one transaction take to reach the chip (SpiDevice):
   * the sketch never holds more than its credit window (plus one decoded frame) of a request, so
   * beyond that the bytes come at the serial line rate; and the board clocks SPI no faster than
   * `spiBytesPerSecond`.
   */
  private minWriteMs(bytes: number): number {
    const buffered = this.window + 64;
    const lineMs = (Math.max(0, bytes - buffered) * 10 * 1000) / this.baudRate;
    return Math.max(lineMs, (bytes * 1000) / this.settings.spiBytesPerSecond);
  }

  private async transfer(batch: readonly SpiTransaction[]): Promise<Uint8Array> {
    if (batch.length === 0) return new Uint8Array(0);
    const delayUs = checkTransactions(batch);
    if (batch.some((t) => t.ifNonZero !== undefined || t.readLengthFrom !== undefined)) {
      // A batch's reply must have the length it was asked for: that is how a lost frame shows.
      throw new HalError('EINVAL', 'ifNonZero and readLengthFrom are for programs (arm), not transfer()');
    }
    this.checkDelaysSupported(delayUs);
    const copy = copyBatch(batch);
    const reply = await this.submit({
      encode: (id) => encodeSpiCommand(id, copy, this.encodeOptions),
      readLength: batchReadLength(copy),
      spi: true,
      retryable: this.isRetryable(batch),
      // The board spends the delays on top of the line and SPI time the deadline already counts.
      extraMs: delayUs / 1000,
    });
    return reply.data;
  }

  // ---- programs (§3.2) ----------------------------------------------------------------------------

  /** How the board reads transactions: SHORT headers (caps bit 9), PAIRS runs (caps bit 12). */
  private get encodeOptions(): EncodeOptions {
    const caps = this.hello?.capabilities ?? 0;
    return { shortHeaders: (caps & Capability.SHORT_HEADERS) !== 0, pairs: (caps & Capability.PAIRS) !== 0 };
  }

  /** The board honours a transaction's delayUs (caps bit 11, flag DELAY). */
  private get transactionDelays(): boolean {
    return ((this.hello?.capabilities ?? 0) & Capability.DELAYS) !== 0;
  }

  /** A board without the DELAY flag would read its operand as write bytes: refuse before sending. */
  private checkDelaysSupported(delayUs: number): void {
    if (!this.transactionDelays && delayUs > 0) {
      throw new HalError('EUNSUPPORTED', `board ${this.hello?.name ?? '?'} (protocol version ${this.hello?.version ?? '?'}) keeps no transaction delays`);
    }
  }

  /** The largest program the board takes, encoded (0: it runs none). */
  private get maxProgramBytes(): number {
    return ((this.hello?.capabilities ?? 0) & Capability.PROGRAMS) !== 0 ? this.hello!.programBytes : 0;
  }

  private async arm(transactions: readonly SpiTransaction[], onRun: (result: Uint8Array) => void, options: ArmOptions = {}): Promise<void> {
    if (this.maxProgramBytes === 0) {
      throw new HalError('EUNSUPPORTED', `board ${this.hello?.name ?? '?'} (protocol version ${this.hello?.version ?? '?'}) runs no programs`);
    }
    this.checkDelaysSupported(checkTransactions(transactions));
    const program: Program = { transactions: copyBatch(transactions), onRun, quiet: options.quietInterrupts ?? false, id: undefined };
    const problem = this.programProblem(program.transactions);
    if (problem) throw new HalError('EINVAL', problem);
    await this.submit(this.armSpec(program));
  }

  /** Why the board could not run `program` as asked, or undefined. */
  private programProblem(program: readonly SpiTransaction[]): string | undefined {
    if (program.length === 0) return 'empty program';
    try {
      encodeArm(0, program, {}, this.encodeOptions);
    } catch (error) {
      return (error as Error).message;
    }
    // IF and LENGTH refer to read bytes by position. Every run must have them: bytes read at a
    // fixed position (before any LENGTH transaction), while the run cannot have read more than 64
    // (past that the board no longer holds them). Anything else makes the board's DONE say
    // EINVAL, and every such run would be dropped.
    let fixed = true; // no LENGTH transaction yet
    let fixedReads = 0;
    let mostReads = 0;
    for (const t of program) {
      const available = mostReads <= REFERABLE_READ_BYTES ? fixedReads : 0;
      if (t.ifNonZero !== undefined && t.ifNonZero >= available) {
        return `ifNonZero refers to read byte ${t.ifNonZero}, but only ${available} are sure to be held before it`;
      }
      const rule = t.readLengthFrom;
      if (rule !== undefined && rule.at + 1 >= available) {
        return `readLengthFrom refers to read bytes ${rule.at} and ${rule.at + 1}, but only ${available} are sure to be held before it`;
      }
      const duplexReads = t.duplex ? (t.write?.length ?? 0) : 0;
      if (fixed) fixedReads += duplexReads + (rule === undefined ? (t.read ?? 0) : 0);
      if (rule !== undefined) fixed = false;
      mostReads += duplexReads + (t.read ?? 0);
    }
    const size = transactionsLength(program, this.encodeOptions);
    if (size > this.maxProgramBytes) return `a program of ${size} bytes (the board takes ${this.maxProgramBytes})`;
    return undefined;
  }

  private armSpec(program: Program): SubmitSpec {
    return {
      encode: (id) => encodeArm(id, program.transactions, { quiet: program.quiet }, this.encodeOptions),
      retryable: true,
      arms: program,
    };
  }

  private async disarm(): Promise<void> {
    // A board without programs has nothing armed.
    if (this.maxProgramBytes === 0) return;
    await this.submit({ encode: (id) => encodeCommand(Command.DISARM, id), retryable: true, arms: null });
  }

  private async runArmed(): Promise<void> {
    if (this.maxProgramBytes === 0) return;
    await this.submit({ encode: (id) => encodeCommand(Command.RUN, id), retryable: true });
  }

  /** ARM or DISARM is done: the board runs `request.arms` under the request's id, or nothing. */
  private programSettled(request: Request, status: number): void {
    const program = request.arms;
    if (program === undefined) return;
    if (this.program) this.program.id = undefined;
    // A refused ARM leaves the board disarmed (§3).
    this.program = program && status === Status.OK ? program : undefined;
    if (this.program) this.program.id = request.id;
  }

  private isRunFrame(frame: BoardFrameView): boolean {
    return this.program?.id === frame.id && (frame.type === BoardFrame.DATA || frame.type === BoardFrame.DONE);
  }

  private onRunFrame(frame: BoardFrameView): void {
    if (frame.type === BoardFrame.DATA) {
      this.runChunks.push(frame.payload.slice());
      this.runReceived += frame.payload.length;
      return;
    }
    // A run's length is its own (IF, LENGTH): only the DONE says how long it was.
    const done = parseDone(frame.payload);
    const intact = done !== undefined && !this.runDamaged && done.status === Status.OK && done.value === (this.runReceived & 0xffff);
    const data = concat(this.runChunks, this.runReceived);
    this.resetRun();
    if (!intact) {
      this.stats.runsLost++;
      return;
    }
    this.stats.runsReported++;
    this.program!.onRun(data);
  }

  /** A reply that is not the run's: the run arriving (if any) lost its DONE. */
  private abandonRun(): void {
    if (this.runReceived === 0 && !this.runDamaged) return;
    this.stats.runsLost++;
    this.resetRun();
  }

  private resetRun(): void {
    this.runChunks = [];
    this.runReceived = 0;
    this.runDamaged = false;
  }

  private onBadFrame(): void {
    this.stats.badFrames++;
    this.afterOldStreamAck = false;
    // A run's answer never interleaves with another reply: the lost frame was this run's.
    if (this.runReceived > 0) this.runDamaged = true;
  }

  // ---- submission -------------------------------------------------------------------------------

  private submit(spec: SubmitSpec): Promise<Reply> {
    if (this.state === 'closed') return Promise.reject(new HalError('ECLOSED', 'bridge closed'));
    if (this.state === 'down') return Promise.reject(new HalError('ELINKLOST', 'serial link is down'));
    return new Promise<Reply>((resolve, reject) => {
      const readLength = spec.readLength ?? 0;
      const commandBytes = spec.encode(0).length;
      const lineMs = (bytes: number) => (bytes * 10 * 1000 * BRIDGE_DEFAULTS.lineTimeFactor) / this.baudRate;
      const request: Request = {
        id: -1,
        encode: spec.encode,
        readLength,
        spi: spec.spi ?? false,
        retryable: spec.retryable,
        barrier: spec.barrier,
        arms: spec.arms,
        onDone: spec.onDone,
        retries: 0,
        firstFrame: 0,
        lastFrame: 0,
        boardMs: spec.extraMs ?? 0,
        budgetMs: this.settings.requestTimeoutMs + (spec.extraMs ?? 0) + lineMs(hostWireBytes(commandBytes) + boardReplyWireBytes(readLength)),
        chunks: [],
        received: 0,
        resolve,
        reject,
      };
      if (spec.first) this.waiting.unshift(request);
      else this.waiting.push(request);
      this.schedulePack();
    });
  }

  private schedulePack(): void {
    if (this.packScheduled) return;
    this.packScheduled = true;
    // Requests issued in the same turn share frames.
    queueMicrotask(() => {
      this.packScheduled = false;
      this.pack();
    });
  }

  /** Move waiting requests into the command stream and frames. */
  private pack(): void {
    if (this.state !== 'ready') return;
    let packed = false;
    while (this.waiting.length > 0 && this.inflight.length < this.settings.maxInFlight) {
      if (this.inflight.some((r) => r.barrier)) break;
      const request = this.waiting.shift()!;
      request.id = this.allocateId();
      request.chunks = [];
      request.received = 0;
      const bytes = request.encode(request.id);
      request.firstFrame = this.nextAbs;
      for (const b of bytes) {
        this.streamTail.push(b);
        if (this.streamTail.length === MAX_PAYLOAD) this.cutFrame();
      }
      request.lastFrame = this.nextAbs;
      this.inflight.push(request);
      packed = true;
      if (request.barrier) break;
    }
    if (this.streamTail.length > 0) this.cutFrame();
    if (packed) {
      this.armHeadTimer();
      this.pump();
    }
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) % NO_REQUEST_ID;
      // The armed program's id is its runs' while it is armed (§3.2).
      if (id !== this.program?.id && !this.inflight.some((r) => r.id === id)) return id;
    }
  }

  private cutFrame(): void {
    const abs = this.nextAbs++;
    this.frames.push({ abs, wire: encodeHostData(abs & 0xff, Uint8Array.from(this.streamTail)) });
    this.streamTail = [];
  }

  /** Write frames from the cursor as far as credit and the sequence space allow. */
  private pump(): void {
    if (this.state !== 'ready' || !this.port) return;
    const out: Uint8Array[] = [];
    let bytes = 0;
    while (this.cursor < this.frames.length && this.cursor < MAX_FRAMES_IN_FLIGHT) {
      const frame = this.frames[this.cursor]!;
      const used = this.sentTotal - this.consumedTotal;
      if (used + frame.wire.length > this.window) break;
      this.sentTotal += frame.wire.length;
      this.stats.peakCreditUsed = Math.max(this.stats.peakCreditUsed, this.sentTotal - this.consumedTotal);
      if (frame.abs < this.transmittedAbs) this.stats.retransmittedFrames++;
      else this.transmittedAbs = frame.abs + 1;
      out.push(frame.wire);
      bytes += frame.wire.length;
      this.cursor++;
    }
    if (out.length === 0) return;
    this.stats.framesSent += out.length;
    this.stats.bytesSent += bytes;
    this.port.write(Buffer.concat(out));
    if (!this.retransmitTimer?.pending) this.armRetransmit();
  }

  private armRetransmit(): void {
    this.retransmitTimer?.cancel();
    if (this.frames.length === 0 || this.transmittedAbs <= this.ackedAbs) return;
    this.retransmitTimer = this.clock.schedule(this.settings.retransmitMs + this.blockedBoardMs(), () => {
      if (this.state !== 'ready' || this.frames.length === 0) return;
      if (++this.stalledRetransmits > this.settings.retransmitLimit) return this.resync('acks stalled');
      this.cursor = 0;
      this.pump();
      this.armRetransmit();
    });
  }

  /**
   * The board acknowledges a frame only after it has executed it, so while a request it has (sent,
   * not yet acknowledged) blocks it — CHIP_RESET, a batch's DELAYs — the acks stall: that long is
   * no reason to resend.
   */
  private blockedBoardMs(): number {
    let ms = 0;
    for (const r of this.inflight) if (r.firstFrame < this.transmittedAbs && r.lastFrame >= this.ackedAbs) ms += r.boardMs;
    return ms;
  }

  private armHeadTimer(): void {
    this.headTimer?.cancel();
    const head = this.inflight[0];
    if (!head || this.state !== 'ready') return;
    this.headTimer = this.clock.schedule(head.budgetMs, () => this.onHeadTimeout(head));
  }

  private onHeadTimeout(head: Request): void {
    if (this.inflight[0] !== head || this.state !== 'ready') return;
    // Still waiting for credit or acks: the go-back-N timer owns that case.
    if (head.lastFrame >= this.ackedAbs) return this.armHeadTimer();
    this.stats.timeouts++;
    if (!this.probing) {
      // The board has all of it: either it is still busy or the DONE was lost. A PING tells.
      this.probing = true;
      this.submit({ encode: (id) => encodeCommand(Command.PING, id), retryable: true })
        .catch(() => {})
        .finally(() => (this.probing = false));
      this.armHeadTimer();
      return;
    }
    this.resync('request timed out');
  }

  // ---- replies ----------------------------------------------------------------------------------

  private onFrame(body: Uint8Array): void {
    const frame = parseBoardFrame(body);
    if (!frame) return this.onBadFrame();
    const afterOldStreamAck = this.afterOldStreamAck;
    // Every HELLO of a resync proposes a seq outside the old stream's (sendHello): an ack in that
    // range is news of the old stream.
    this.afterOldStreamAck =
      this.state === 'resyncing' && frame.type === BoardFrame.ACK && ((frame.ack - this.ackedAbs) & 0xff) <= this.transmittedAbs - this.ackedAbs;
    this.setIntLevel(frame.intAsserted);
    if (frame.type === BoardFrame.HELLO) return this.onHello(frame, afterOldStreamAck);
    if (this.state !== 'ready' && this.state !== 'resyncing') return;
    this.onAck(frame);
    switch (frame.type) {
      case BoardFrame.NAK:
        this.stats.naks++;
        if (this.state === 'ready' && (frame.ack !== this.lastNakAck || this.cursor > 0)) {
          this.lastNakAck = frame.ack;
          this.cursor = 0;
          this.pump();
        }
        return;
      case BoardFrame.DATA:
      case BoardFrame.DONE:
        if (this.isRunFrame(frame)) return this.onRunFrame(frame);
        this.abandonRun();
        return frame.type === BoardFrame.DATA ? this.onData(frame) : this.onDone(frame);
      case BoardFrame.EVENT:
        return this.onBoardEvent(frame);
    }
  }

  private onAck(frame: BoardFrameView): void {
    this.consumedTotal += (frame.consumed - this.lastConsumed16) & 0xffff;
    this.lastConsumed16 = frame.consumed;
    const advance = (frame.ack - this.ackedAbs) & 0xff;
    if (advance > 0 && advance <= this.transmittedAbs - this.ackedAbs) {
      this.ackedAbs += advance;
      this.frames.splice(0, advance);
      this.cursor = Math.max(0, this.cursor - advance);
      this.stalledRetransmits = 0;
      this.lastNakAck = -1;
      this.armRetransmit();
    }
    this.pump();
  }

  private takeUpTo(id: number): Request | undefined {
    const index = this.inflight.findIndex((r) => r.id === id);
    if (index < 0) return undefined;
    // Replies come in request order: anything before this one lost its DONE.
    this.retry(this.inflight.splice(0, index).filter((lost) => this.replyLost(lost, 'EPROTO', 'reply lost')));
    if (index > 0) this.armHeadTimer();
    return this.inflight[0];
  }

  private onData(frame: BoardFrameView): void {
    const request = this.takeUpTo(frame.id);
    if (!request) return;
    request.chunks.push(frame.payload.slice());
    request.received += frame.payload.length;
  }

  private onDone(frame: BoardFrameView): void {
    const done = parseDone(frame.payload);
    if (!done) return;
    if (frame.id === NO_REQUEST_ID && done.status === Status.EBADCMD) return this.resync('board lost the command stream');
    const request = this.takeUpTo(frame.id);
    if (!request) return;
    this.inflight.shift();
    this.armHeadTimer();
    this.programSettled(request, done.status);
    if (done.status !== Status.OK) {
      const name = STATUS_NAMES[done.status] ?? `status ${done.status}`;
      const code: HalErrorCode = done.status === Status.EBADCMD ? 'EPROTO' : done.status === Status.EUNSUPPORTED ? 'EUNSUPPORTED' : 'EINVAL';
      request.reject(new HalError(code, `board refused the command: ${name}`));
    } else if (request.received !== request.readLength || (request.spi && done.value !== (request.readLength & 0xffff))) {
      if (this.replyLost(request, 'EPROTO', `reply incomplete: ${request.received} of ${request.readLength} bytes`)) this.retry([request]);
    } else {
      const data = concat(request.chunks, request.received);
      const finish = () => request.resolve({ data, value: done.value });
      if (request.onDone) {
        Promise.resolve(request.onDone()).then(finish, (error: Error) => request.reject(new HalError('EPROTO', error.message)));
      } else {
        finish();
      }
    }
    this.schedulePack();
  }

  /**
   * The board executed `request` (fully or partly) but its reply did not arrive intact: true if it
   * goes again (the caller queues it with retry()), else it has failed.
   */
  private replyLost(request: Request, code: HalErrorCode, message: string): boolean {
    this.stats.lostReplies++;
    if (request.retryable && request.retries < this.settings.maxRetries) {
      request.retries++;
      this.stats.retries++;
      return true;
    }
    request.reject(new HalError(code, message));
    return false;
  }

  /** Queue `requests` again ahead of everything waiting, in their order. */
  private retry(requests: Request[]): void {
    if (requests.length === 0) return;
    this.waiting.unshift(...requests);
    this.schedulePack();
  }

  private onBoardEvent(frame: BoardFrameView): void {
    const [kind, a = 0, b = 0] = frame.payload;
    if (kind === EventKind.INT) {
      const level = a !== 0;
      const edgesSeen = this.intEdges === undefined ? 0 : (b - this.intEdges) & 0xff;
      this.intEdges = b;
      // Edges without a level change: a pulse the board's loop did not see as a level.
      if (level === this.intLevel && edgesSeen >= 2) this.setIntLevel(!level);
      this.setIntLevel(level);
    } else if (kind === EventKind.PIN) {
      for (const listener of this.pinListeners) listener(a, b ? 1 : 0);
    }
  }

  private setIntLevel(level: boolean): void {
    if (level === this.intLevel) return;
    this.intLevel = level;
    for (const listener of this.intListeners) listener(level);
  }

  // ---- session: HELLO, resync, reconnect ---------------------------------------------------------

  private async connect(): Promise<void> {
    this.state = 'connecting';
    await this.openPort();
    await new Promise<void>((resolve, reject) => {
      this.connectWaiter = { resolve, reject };
      this.startHello();
    });
  }

  private async openPort(): Promise<void> {
    const { path, binding } = this.options;
    const port = binding
      ? new SerialPortStream({ binding, path, baudRate: this.baudRate, autoOpen: false })
      : new SerialPort({ path, baudRate: this.baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((error) => (error ? reject(error) : resolve())));
    this.port = port;
    port.on('data', (data: Buffer) => {
      if (this.port !== port) return;
      this.stats.bytesReceived += data.length;
      this.decoder.push(new Uint8Array(data.buffer, data.byteOffset, data.length));
    });
    port.on('close', () => {
      if (this.port === port) this.linkDown('serial port closed');
    });
    port.on('error', (error: Error) => {
      if (this.port === port && !port.isOpen) this.linkDown(`serial port error: ${error.message}`);
    });
  }

  private async closePort(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private startHello(): void {
    this.helloAttempts = 0;
    this.helloDeadline = this.clock.now() + this.settings.openTimeoutMs;
    this.sendHello();
  }

  private sendHello(): void {
    this.helloTimer?.cancel();
    if (!this.port || (this.state !== 'connecting' && this.state !== 'resyncing')) return;
    if (this.clock.now() > this.helloDeadline) {
      const error = new HalError('ETIMEDOUT', `no HELLO from the board on ${this.options.path}`);
      if (this.connectWaiter) {
        this.connectWaiter.reject(error);
        this.connectWaiter = undefined;
        return;
      }
      this.linkDown('board does not answer HELLO');
      return;
    }
    this.helloAttempts++;
    // Each HELLO proposes a fresh stream origin; only the reply echoing the latest one counts,
    // so a HELLO that crossed the boot HELLO (or a slow reply) cannot restart a live stream. The
    // origin lies outside the acks the old stream can still report (ackedAbs..transmittedAbs), so
    // an ACK from a board that took an earlier HELLO of this resync is never read as one of them.
    // 0x35 is odd: the steps visit all 256 values, and at most 128 are excluded.
    do this.helloSeq = (this.helloSeq + 0x35) & 0xff;
    while (((this.helloSeq - this.ackedAbs) & 0xff) <= this.transmittedAbs - this.ackedAbs);
    // Ask for ended DATA frames (a request's DONE in its last DATA frame, caps bit 13): a board
    // without them ignores the option.
    this.port.write(Buffer.from(encodeHostHello(this.helloSeq, HostHelloOption.END_FRAMES)));
    this.helloTimer = this.clock.schedule(this.settings.helloRetryMs, () => this.sendHello());
  }

  private onHello(frame: BoardFrameView, afterOldStreamAck: boolean): void {
    const hello = parseHello(frame.payload);
    if (!hello) return;
    // The board reports what it received just before it answers a HELLO (§2). An answer right
    // after an ACK in the old stream's range: that was the report before the board's first answer
    // of this resync (a later answer's ACK speaks of an earlier HELLO's stream, out of that range).
    if (this.state === 'resyncing' && hello.sessions !== 0 && afterOldStreamAck) this.oldStreamReported = true;
    if (hello.sessions === 0) {
      // The unsolicited boot HELLO: the board has just reset.
      this.sawBootHello = true;
      if (this.state === 'ready' || this.state === 'resyncing') {
        // Up, or recovering from a garbled stream: either way what the board held is gone, and
        // the driver must hear of it (a chip it has to set up again) before the link comes back.
        this.failAll('ELINKLOST', 'board reset');
        this.resetAnnounced = true;
        this.emit({ type: 'link-lost', reason: 'board reset' });
        if (this.state === 'ready') this.resync('board reset', false);
        else this.sendHello(); // answer at once instead of waiting for the retry
      } else if (this.state === 'connecting') {
        this.sendHello();
      }
      return;
    }
    if ((this.state !== 'connecting' && this.state !== 'resyncing') || frame.ack !== this.helloSeq) return;
    if (hello.version < MIN_PROTOCOL_VERSION || hello.version > PROTOCOL_VERSION) return this.refuseBoard(hello);
    // The board counts every HELLO it answers, also answers lost on the way: a count that moved
    // on (by one, or more when answers were lost) is the same board; one that did not move or
    // went back started again from 0 (a reset whose boot HELLO we missed).
    const advanced = this.hello ? (hello.sessions - this.hello.sessions) & 0xff : 0;
    const boardReset = this.sawBootHello || !this.hello || advanced === 0 || advanced >= 0x80;
    const wasConnecting = this.state === 'connecting';
    const wasResyncing = this.state === 'resyncing';
    this.helloTimer?.cancel();
    this.hello = hello;
    this.sawBootHello = false;
    this.window = hello.window;
    this.sentTotal = 0;
    this.consumedTotal = 0;
    this.lastConsumed16 = frame.consumed;
    // Whatever the board did not receive before the HELLO goes again, under new sequence numbers,
    // and so does what it executed if that may run twice; in their order. Without the board's
    // report before its answer (lost on the line), a frame sent but not acked may have arrived:
    // its request counts as executed, so a batch that must not run twice never does.
    const reported = !wasResyncing || this.oldStreamReported;
    const again = this.inflight.filter((request) => {
      const received = request.firstFrame < this.ackedAbs || (!reported && request.firstFrame < this.transmittedAbs);
      return !received || this.replyLost(request, 'ETIMEDOUT', 'request interrupted by a resync');
    });
    this.inflight = [];
    this.waiting = [...again, ...this.waiting];
    // The HELLO disarmed the board (§2): re-arm it, unless it reset (the driver arms again after
    // setting the chip up afresh).
    this.abandonRun();
    if (this.program) this.program.id = undefined;
    if (boardReset) this.program = undefined;
    const rearm = this.program;
    this.frames = [];
    this.streamTail = [];
    this.cursor = 0;
    this.ackedAbs = this.nextAbs = this.transmittedAbs = frame.ack;
    this.stalledRetransmits = 0;
    this.lastNakAck = -1;
    this.state = 'ready';
    if (this.connectWaiter) {
      this.connectWaiter.resolve();
      this.connectWaiter = undefined;
    } else if (wasConnecting || boardReset) {
      // A reset found by the session count alone (its boot HELLO was lost on the line) is
      // announced like one seen directly: the link went down with the board, and is back.
      if (boardReset && !wasConnecting && !this.resetAnnounced) this.emit({ type: 'link-lost', reason: 'board reset' });
      this.emit({ type: 'link-restored', boardReset });
    }
    this.resetAnnounced = false;
    if (rearm && this.maxProgramBytes > 0) {
      // Ahead of every other command, so nothing runs on the board without its program.
      this.submit({ ...this.armSpec(rearm), first: true }).catch(() => {});
    }
    // HELLO turned the idle fill off (§2): on again first of all, so every reply gets it.
    const idleFill = this.settings.idleFill === 'auto' ? idleFillForBoard(hello.name) : this.settings.idleFill;
    if (idleFill > 0 && (hello.capabilities & Capability.IDLE_FILL) !== 0) {
      this.submit({ encode: (id) => encodeSetFill(id, idleFill), retryable: true, first: true }).catch(() => {});
    }
    this.schedulePack();
  }

  /** A board speaking a protocol this host does not. */
  private refuseBoard(hello: Hello): void {
    const message = `board ${hello.name} speaks bridge protocol version ${hello.version}; this host speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`;
    this.helloTimer?.cancel();
    if (this.connectWaiter) {
      this.connectWaiter.reject(new HalError('EUNSUPPORTED', message));
      this.connectWaiter = undefined;
      return;
    }
    this.linkDown(message);
  }

  /** HELLO again: the board drops any half-received command and both ends restart the stream. */
  private resync(reason: string, countIt = true): void {
    if (this.state !== 'ready') return;
    if (countIt) this.stats.resyncs++;
    this.lastResyncReason = reason;
    this.state = 'resyncing';
    this.afterOldStreamAck = false;
    this.oldStreamReported = false;
    this.headTimer?.cancel();
    this.retransmitTimer?.cancel();
    this.startHello();
  }

  /** Why the last resync happened (diagnostics). */
  lastResyncReason = '';

  private linkDown(reason: string): void {
    if (this.state === 'closed' || this.state === 'down') return;
    const wasUp = this.state === 'ready' || this.state === 'resyncing';
    this.state = 'down';
    this.cancelTimers();
    this.failAll('ELINKLOST', reason);
    if (this.connectWaiter) {
      this.connectWaiter.reject(new HalError('ELINKLOST', reason));
      this.connectWaiter = undefined;
    }
    void this.closePort();
    if (wasUp) this.emit({ type: 'link-lost', reason });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.reconnectTimer?.cancel();
    this.reconnectTimer = this.clock.schedule(this.settings.reconnectMs, () => {
      if (this.state !== 'down') return;
      this.openPort().then(
        () => {
          if (this.state !== 'down') return;
          this.stats.reconnects++;
          this.state = 'connecting';
          this.startHello();
        },
        () => this.scheduleReconnect(),
      );
    });
  }

  private failAll(code: HalErrorCode, message: string): void {
    const all = [...this.inflight, ...this.waiting];
    this.inflight = [];
    this.waiting = [];
    this.frames = [];
    this.streamTail = [];
    this.cursor = 0;
    this.ackedAbs = this.nextAbs = this.transmittedAbs;
    for (const request of all) request.reject(new HalError(code, message));
  }

  private cancelTimers(): void {
    this.headTimer?.cancel();
    this.retransmitTimer?.cancel();
    this.helloTimer?.cancel();
  }

  private emit(event: HalEvent): void {
    for (const listener of this.eventListeners) listener(event);
  }

  // ---- GPIO ---------------------------------------------------------------------------------------

  private makeGpio(): Gpio {
    const simple = async (command: number, ...args: number[]) =>
      (await this.submit({ encode: (id) => encodeCommand(command, id, ...args), retryable: true })).value;
    const pinCount = () => this.hello?.pinCount ?? 0;
    return {
      get pinCount() {
        return pinCount();
      },
      pinMode: async (pin, mode) => {
        await simple(Command.PIN_MODE, pin, PIN_MODE_CODES[mode]);
        const report = mode === 'input' || mode === 'input-pullup';
        if (report !== this.reportedPins.has(pin)) {
          await simple(Command.PIN_REPORT, pin, report ? 1 : 0);
          if (report) this.reportedPins.add(pin);
          else this.reportedPins.delete(pin);
        }
      },
      digitalWrite: async (pin, value) => {
        await simple(Command.DIGITAL_WRITE, pin, value);
      },
      digitalRead: async (pin) => ((await simple(Command.DIGITAL_READ, pin)) ? 1 : 0),
      analogRead: async (pin) => {
        const a0 = this.hello?.a0Pin ?? 14;
        return simple(Command.ANALOG_READ, pin >= a0 ? pin - a0 : pin);
      },
      pwmWrite: async (pin, duty) => {
        await simple(Command.PWM_WRITE, pin, Math.max(0, Math.min(255, Math.round(duty))));
      },
      onPinChange: (listener) => {
        this.pinListeners.add(listener);
        return () => this.pinListeners.delete(listener);
      },
    };
  }
}

/** Check `batch`'s lengths and delays (EINVAL); its total delay in µs. */
function checkTransactions(batch: readonly SpiTransaction[]): number {
  for (const t of batch) {
    if ((t.write?.length ?? 0) > 0xffff || (t.read ?? 0) > 0xffff || (t.read ?? 0) < 0) {
      throw new HalError('EINVAL', 'SPI transaction longer than 65535 bytes');
    }
  }
  try {
    return batchDelayUs(batch);
  } catch (error) {
    throw new HalError('EINVAL', (error as Error).message);
  }
}

/** The caller may reuse its buffers once the call returns. */
function copyBatch(batch: readonly SpiTransaction[]): SpiTransaction[] {
  return batch.map((t) => ({ ...t, write: t.write ? t.write.slice() : undefined }));
}

function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const data = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    data.set(chunk, at);
    at += chunk.length;
  }
  return data;
}

/** Open a bridge HAL on a serial port (real or simulated); see BridgeHalOptions. */
export function openBridgeHal(options: BridgeHalOptions): Promise<BridgeHal> {
  return BridgeHal.open(options);
}
