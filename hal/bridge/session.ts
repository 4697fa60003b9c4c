/**
 * A session with the bridge board (docs/bridge-protocol.md §2, §3, §5): the serial port, the HELLO
 * that starts a command stream and tells what the board can do, the requests carried on that
 * stream and matched to their replies, and the recovery when something breaks.
 *
 * Requests are encoded into the command stream, which the reliable link (reliable-link.ts) carries
 * to the board, several in flight. Replies come back in request order; a lost reply is detected by
 * id or length and the request is resubmitted only if it is retryable. A silent board gets a PING,
 * then a HELLO resync; a vanished port is reopened; a board that reset is announced with
 * link-lost/link-restored. After every HELLO the session puts back what the HELLO cleared on the
 * board: idle fill (caps bit 10) and the armed program (§3.2). While a program is armed its id
 * belongs to its runs, answers the board sends unasked between any two replies. A version 1 board
 * works too, without programs.
 *
 * The HAL façade (bridge-hal.ts) turns SpiDevice, the lines and Gpio into requests.
 */
import type { BindingInterface } from './serialport-types.js';
import { openSerialConnection, type SerialConnection } from './serial-connection.js';
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { RealClock } from '../../src/time/real-clock.js';
import { RearmableTimer } from '../../src/time/timer.js';
import { HalError, type HalErrorCode, type HalEvent, type SpiTransaction } from '../../src/drivers/hal.js';
import { BRIDGE_DEFAULTS, idleFillForBoard } from './options.js';
import { tuneFtdiLatency, type FtdiLatency } from './ftdi-latency.js';
import {
  BoardFrame,
  Capability,
  Command,
  FrameDecoder,
  HostHelloOption,
  MIN_PROTOCOL_VERSION,
  NO_REQUEST_ID,
  PROTOCOL_VERSION,
  STATUS_NAMES,
  Status,
  boardReplyWireBytes,
  encodeArm,
  encodeCommand,
  encodeHostHello,
  encodeSetBaud,
  encodeSetFill,
  hostWireBytes,
  parseBoardFrame,
  parseDone,
  parseHello,
  type BoardFrameView,
  type EncodeOptions,
  type Hello,
} from './protocol.js';
import { ReliableLink, type LinkStats } from './reliable-link.js';

/** HELLOs unanswered at a SET_BAUD rate before the host goes back to the compiled-in rate. */
const BAUD_FALLBACK_ATTEMPTS = 4;

export interface BridgeSessionOptions {
  /** Serial port, e.g. /dev/ttyACM0 (or a simulated board's path with its `binding`). */
  readonly path: string;
  readonly baudRate?: number;
  /** serialport binding; default: the operating system's (serialport's autodetect). */
  readonly binding?: BindingInterface;
  /** Timeouts and delay() run on this clock (a VirtualClock in simulations). Default: real time. */
  readonly clock?: Clock;
  readonly requestTimeoutMs?: number;
  readonly retransmitMs?: number;
  readonly retransmitLimit?: number;
  readonly helloRetryMs?: number;
  /** After opening the port, wait this long for the board's boot HELLO before saying HELLO (BRIDGE_DEFAULTS.bootWaitMs). */
  readonly bootWaitMs?: number;
  readonly openTimeoutMs?: number;
  readonly reconnectMs?: number;
  readonly maxRetries?: number;
  readonly maxInFlight?: number;
  /**
   * Zeros the board sends after each burst of frames (SET_FILL, 0..255; 0 = off, the default), so
   * the USB-serial chip forwards a reply at once instead of on its timer: `idleFillFor(chip)`
   * (options.ts) gives the value for a 16U2 or an FTDI chip; 'auto' takes it from the board the
   * HELLO names (`idleFillForBoard`: the Uno and Mega's 16U2, the Nano's FT232RL).
   */
  readonly idleFill?: number | 'auto';
  /**
   * The latency timer to give an FTDI chip behind the port when it opens (Linux sysfs,
   * ftdi-latency.ts), ms; 0 leaves the chip's own (16 ms by default). BRIDGE_DEFAULTS.ftdiLatencyMs.
   */
  readonly ftdiLatencyMs?: number;
  /** Where sysfs is mounted (default /sys; a fake tree in tests). */
  readonly sysfsRoot?: string;
  /** Told what a person should know about the port (the FTDI latency timer set, or not settable). */
  readonly onNotice?: (message: string) => void;
}

export interface BridgeStats extends LinkStats {
  bytesReceived: number;
  badFrames: number;
  lostReplies: number;
  retries: number;
  timeouts: number;
  resyncs: number;
  reconnects: number;
  /** Program runs handed to `onRun`. */
  runsReported: number;
  /** Program runs dropped: a frame of the answer was lost or corrupt, or its DONE count was off. */
  runsLost: number;
  /** Frames from the board that passed their CRC. */
  framesReceived: number;
  /** Times the board was found to have reset (boot HELLO, or its session count started over). */
  boardResets: number;
  /** Reads from the port (each a wake-up of the host) and writes to it: the host's CPU goes mostly per event, not per byte. */
  portReads: number;
  portWrites: number;
}

/** The link's state right now, for consoles (`BridgeHal.linkStatus()`). */
export interface BridgeLinkStatus {
  readonly state: 'connecting' | 'ready' | 'resyncing' | 'down' | 'closed';
  readonly baudRate: number;
  /** The board's receive window (bytes it can buffer), from its HELLO. */
  readonly creditWindow: number;
  /** Bytes sent and not yet consumed by the board. */
  readonly creditUsed: number;
  readonly requestsInFlight: number;
  readonly requestsWaiting: number;
  readonly board: string | undefined;
  readonly protocolVersion: number | undefined;
  /** An FTDI chip's latency timer (ms) as the port's last open left it. */
  readonly ftdiLatencyMs?: number;
}

/** What the session hears from the board for the HAL's lines: INT, pins. */
export interface BoardSignals {
  /** Every board frame carries the INT level. */
  intLevel(asserted: boolean): void;
  /** An EVENT frame's payload: kind, a, b (§3). */
  event(payload: Uint8Array): void;
}

export interface Reply {
  readonly data: Uint8Array;
  readonly value: number;
}

export interface SubmitSpec {
  readonly encode: (id: number) => Uint8Array;
  readonly readLength?: number;
  /** An SPI batch: the DONE value is the read count, checked against the data received. */
  readonly spi?: boolean;
  /** May the board execute it twice (asked when its reply was lost after it ran)? */
  readonly retryable: boolean;
  /** Stop packing after this request until it is answered (SET_BAUD). */
  readonly barrier?: boolean;
  /** ARM (this program) or DISARM (null): the board's program once the command is done. */
  readonly arms?: Program | null;
  /** Time the board spends blocked on it besides line and SPI time (CHIP_RESET, DELAYs). */
  readonly extraMs?: number;
  readonly onDone?: () => Promise<void> | void;
  /** Queue ahead of everything waiting (the SET_FILL and re-ARM after a HELLO). */
  readonly first?: boolean;
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
  readonly spi: boolean;
  readonly retryable: boolean;
  readonly barrier?: boolean;
  readonly arms?: Program | null;
  readonly onDone?: () => Promise<void> | void;
  retries: number;
  /** The link frames its bytes went into, first to last. */
  firstFrame: number;
  lastFrame: number;
  readonly boardMs: number;
  budgetMs: number;
  chunks: Uint8Array[];
  received: number;
  resolve(reply: Reply): void;
  reject(error: HalError): void;
}

type SessionState = 'connecting' | 'ready' | 'resyncing' | 'down' | 'closed';

export class BridgeSession {
  readonly stats: BridgeStats = {
    framesSent: 0, bytesSent: 0, bytesReceived: 0, retransmittedFrames: 0, naks: 0, badFrames: 0, lostReplies: 0,
    retries: 0, timeouts: 0, resyncs: 0, reconnects: 0, peakCreditUsed: 0, runsReported: 0, runsLost: 0, framesReceived: 0, boardResets: 0,
    portReads: 0, portWrites: 0,
  };
  readonly clock: Clock;
  /** Why the last resync happened (diagnostics). */
  lastResyncReason = '';

  private readonly settings: Required<Omit<BridgeSessionOptions, 'binding' | 'clock' | 'path' | 'sysfsRoot' | 'onNotice'>>;
  /** The FTDI latency timer as the last open left it (undefined: not an FTDI port, or simulated). */
  private ftdi: FtdiLatency | undefined;
  private baud: number;
  private state: SessionState = 'connecting';
  private port: SerialConnection | undefined;
  private readonly decoder: FrameDecoder;
  private readonly link: ReliableLink;
  private readonly eventListeners = new Set<(event: HalEvent) => void>();
  private boardHello: Hello | undefined;

  // Requests.
  private waiting: Request[] = [];
  private inflight: Request[] = [];
  private nextId = 0;
  private packScheduled = false;
  /** The oldest request's reply deadline; re-armed on every reply, so it sleeps on rather than rescheduling. */
  private readonly headTimer: RearmableTimer;
  private probing = false;

  // Programs: the one the host wants armed, and the answer of the run arriving now.
  private program: Program | undefined;
  private runChunks: Uint8Array[] = [];
  private runReceived = 0;
  /** A frame was lost in the middle of the run arriving now. */
  private runDamaged = false;

  // HELLO.
  private helloTimer: TimerHandle | undefined;
  private helloSeq = 0;
  private helloDeadline = 0;
  private sawBootHello = false;
  /** A link-lost for the current board reset has been emitted. */
  private resetAnnounced = false;
  /** During a resync: the last frame was an ACK with an ack of the stream the HELLO cuts off. */
  private afterOldStreamAck = false;
  /**
   * During a resync: a HELLO answer came right after such an ACK — the report the board sends
   * before it answers a HELLO (§2) — so the link's acknowledged frame is what the board received,
   * not a lower bound.
   */
  private oldStreamReported = false;
  private connectWaiter: { resolve(): void; reject(error: Error): void } | undefined;
  private reconnectTimer: TimerHandle | undefined;

  constructor(
    private readonly options: BridgeSessionOptions,
    private readonly signals: BoardSignals,
  ) {
    this.clock = options.clock ?? new RealClock();
    this.headTimer = new RearmableTimer(this.clock, () => this.onHeadTimeout());
    this.settings = {
      baudRate: options.baudRate ?? BRIDGE_DEFAULTS.baudRate,
      requestTimeoutMs: options.requestTimeoutMs ?? BRIDGE_DEFAULTS.requestTimeoutMs,
      retransmitMs: options.retransmitMs ?? BRIDGE_DEFAULTS.retransmitMs,
      retransmitLimit: options.retransmitLimit ?? BRIDGE_DEFAULTS.retransmitLimit,
      helloRetryMs: options.helloRetryMs ?? BRIDGE_DEFAULTS.helloRetryMs,
      bootWaitMs: options.bootWaitMs ?? BRIDGE_DEFAULTS.bootWaitMs,
      openTimeoutMs: options.openTimeoutMs ?? BRIDGE_DEFAULTS.openTimeoutMs,
      reconnectMs: options.reconnectMs ?? BRIDGE_DEFAULTS.reconnectMs,
      maxRetries: options.maxRetries ?? BRIDGE_DEFAULTS.maxRetries,
      maxInFlight: options.maxInFlight ?? BRIDGE_DEFAULTS.maxInFlight,
      idleFill: options.idleFill ?? BRIDGE_DEFAULTS.idleFill,
      ftdiLatencyMs: options.ftdiLatencyMs ?? BRIDGE_DEFAULTS.ftdiLatencyMs,
    };
    const { idleFill } = this.settings;
    if (idleFill !== 'auto' && (!Number.isInteger(idleFill) || idleFill < 0 || idleFill > 0xff)) throw new RangeError(`idleFill ${idleFill}: 0 to 255 bytes`);
    this.baud = this.settings.baudRate;
    this.decoder = new FrameDecoder(
      (body) => this.onFrame(body),
      () => this.onBadFrame(),
      undefined,
      { endedFrames: true },
    );
    this.link = new ReliableLink({
      clock: this.clock,
      write: (wire) => this.write(wire),
      retransmitMs: this.settings.retransmitMs,
      retransmitLimit: this.settings.retransmitLimit,
      onStalled: () => this.resync('acks stalled'),
      boardBusyMs: () => this.blockedBoardMs(),
      stats: this.stats,
    });
  }

  /** The board's last HELLO. */
  get hello(): Hello | undefined {
    return this.boardHello;
  }

  /** Ready to carry requests (false while the port is gone or a resync runs). */
  get ready(): boolean {
    return this.state === 'ready';
  }

  /** The serial line's rate now (SET_BAUD changes it). */
  get baudRate(): number {
    return this.baud;
  }

  linkStatus(): BridgeLinkStatus {
    const credit = this.link.credit;
    return {
      state: this.state,
      baudRate: this.baud,
      creditWindow: credit.window,
      creditUsed: credit.used,
      requestsInFlight: this.inflight.length,
      requestsWaiting: this.waiting.length,
      board: this.boardHello?.name,
      protocolVersion: this.boardHello?.version,
      ...(this.ftdi?.toMs !== undefined ? { ftdiLatencyMs: this.ftdi.toMs } : {}),
    };
  }

  /** How the board reads transactions: SHORT headers (caps bit 9), PAIRS runs (caps bit 12). */
  get encodeOptions(): EncodeOptions {
    const caps = this.boardHello?.capabilities ?? 0;
    return { shortHeaders: (caps & Capability.SHORT_HEADERS) !== 0, pairs: (caps & Capability.PAIRS) !== 0 };
  }

  /** The board honours a transaction's delayUs (caps bit 11, flag DELAY). */
  get transactionDelays(): boolean {
    return ((this.boardHello?.capabilities ?? 0) & Capability.DELAYS) !== 0;
  }

  /** Programs may use the EXT tests and patches (caps bit 15). */
  get programExtensions(): boolean {
    return this.maxProgramBytes > 0 && ((this.boardHello?.capabilities ?? 0) & Capability.PROGRAM_EXT) !== 0;
  }

  /** The largest program the board takes, encoded (0: it runs none). */
  get maxProgramBytes(): number {
    return ((this.boardHello?.capabilities ?? 0) & Capability.PROGRAMS) !== 0 ? this.boardHello!.programBytes : 0;
  }

  onEvent(listener: (event: HalEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Open the port, say HELLO and resolve once the board answered. */
  async connect(): Promise<void> {
    this.state = 'connecting';
    await this.openPort();
    await new Promise<void>((resolve, reject) => {
      this.connectWaiter = { resolve, reject };
      this.startHello(this.settings.bootWaitMs);
    });
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
        this.baud = baud;
        await this.port?.setBaud(baud);
      },
    });
  }

  /** Put `transactions` on the board as its program (§3.2); the board's runs go to `onRun`. */
  async arm(transactions: readonly SpiTransaction[], onRun: (result: Uint8Array) => void, quiet: boolean): Promise<void> {
    await this.submit(this.armSpec({ transactions, onRun, quiet, id: undefined }));
  }

  async disarm(): Promise<void> {
    await this.submit({ encode: (id) => encodeCommand(Command.DISARM, id), retryable: true, arms: null });
  }

  // ---- requests ---------------------------------------------------------------------------------

  submit(spec: SubmitSpec): Promise<Reply> {
    if (this.state === 'closed') return Promise.reject(new HalError('ECLOSED', 'bridge closed'));
    if (this.state === 'down') return Promise.reject(new HalError('ELINKLOST', 'serial link is down'));
    return new Promise<Reply>((resolve, reject) => {
      const readLength = spec.readLength ?? 0;
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
        // Set when the command is encoded (pack): encoding it here only for its length would
        // copy every byte of a frame write once more.
        budgetMs: 0,
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

  /** Move waiting requests into the command stream. */
  private pack(): void {
    if (this.state !== 'ready') return;
    let packed = false;
    while (this.waiting.length > 0 && this.inflight.length < this.settings.maxInFlight) {
      if (this.inflight.some((r) => r.barrier)) break;
      const request = this.waiting.shift()!;
      request.id = this.allocateId();
      request.chunks = [];
      request.received = 0;
      request.firstFrame = this.link.nextFrame;
      const command = request.encode(request.id);
      request.budgetMs = this.requestBudgetMs(command.length, request);
      this.link.append(command);
      request.lastFrame = this.link.nextFrame;
      this.inflight.push(request);
      packed = true;
      if (request.barrier) break;
    }
    if (packed) {
      this.armHeadTimer();
      this.link.flush();
    }
  }

  /** How long the oldest request may wait for its reply: the timeout, the board's extra time and the line time both ways. */
  private requestBudgetMs(commandBytes: number, request: Request): number {
    const lineBytes = hostWireBytes(commandBytes) + boardReplyWireBytes(request.readLength);
    return this.settings.requestTimeoutMs + request.boardMs + (lineBytes * 10 * 1000 * BRIDGE_DEFAULTS.lineTimeFactor) / this.baud;
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) % NO_REQUEST_ID;
      // The armed program's id is its runs' while it is armed (§3.2).
      if (id !== this.program?.id && !this.inflight.some((r) => r.id === id)) return id;
    }
  }

  /**
   * Time the board spends blocked (CHIP_RESET, a batch's DELAYs) on requests it was sent and has
   * not acknowledged: the link waits that much longer for acks before it resends.
   */
  private blockedBoardMs(): number {
    let ms = 0;
    for (const r of this.inflight) if (r.firstFrame < this.link.transmittedFrames && r.lastFrame >= this.link.acknowledged) ms += r.boardMs;
    return ms;
  }

  private armHeadTimer(): void {
    const head = this.inflight[0];
    if (!head || this.state !== 'ready') return this.headTimer.cancel();
    this.headTimer.arm(head.budgetMs);
  }

  private onHeadTimeout(): void {
    const head = this.inflight[0];
    if (!head || this.state !== 'ready') return;
    // Still waiting for credit or acks: the link's resend timer owns that case.
    if (head.lastFrame >= this.link.acknowledged) return this.armHeadTimer();
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
    this.stats.framesReceived++;
    const afterOldStreamAck = this.afterOldStreamAck;
    // Every HELLO of a resync proposes a seq outside the old stream's (sendHello): an ack in that
    // range is news of the old stream.
    this.afterOldStreamAck = this.state === 'resyncing' && frame.type === BoardFrame.ACK && this.link.couldAck(frame.ack);
    this.signals.intLevel(frame.intAsserted);
    if (frame.type === BoardFrame.HELLO) return this.onHello(frame, afterOldStreamAck);
    if (this.state !== 'ready' && this.state !== 'resyncing') return;
    this.link.receive(frame);
    switch (frame.type) {
      case BoardFrame.DATA:
      case BoardFrame.DONE:
        if (this.isRunFrame(frame)) return this.onRunFrame(frame);
        this.abandonRun();
        return frame.type === BoardFrame.DATA ? this.onData(frame) : this.onDone(frame);
      case BoardFrame.EVENT:
        return this.signals.event(frame.payload);
    }
  }

  private onBadFrame(): void {
    this.stats.badFrames++;
    this.afterOldStreamAck = false;
    // A run's answer never interleaves with another reply: the lost frame was this run's.
    if (this.runReceived > 0) this.runDamaged = true;
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

  // ---- programs (§3.2) ----------------------------------------------------------------------------

  private armSpec(program: Program): SubmitSpec {
    return {
      encode: (id) => encodeArm(id, program.transactions, { quiet: program.quiet }, this.encodeOptions),
      retryable: true,
      arms: program,
    };
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

  // ---- port ---------------------------------------------------------------------------------------

  private async openPort(): Promise<void> {
    const { path, binding } = this.options;
    // Each open: a chip that was unplugged comes back with its default timer.
    if (!binding && this.settings.ftdiLatencyMs > 0) {
      const ftdi = await tuneFtdiLatency(path, { sysfsRoot: this.options.sysfsRoot, targetMs: this.settings.ftdiLatencyMs });
      this.ftdi = ftdi.outcome === 'not-ftdi' ? undefined : ftdi;
      if (ftdi.message) this.options.onNotice?.(ftdi.message);
    }
    const port: SerialConnection = await openSerialConnection(
      { path, baudRate: this.baud, ...(binding ? { binding } : {}) },
      {
        data: (bytes) => {
          if (this.port !== port) return;
          this.stats.portReads++;
          this.stats.bytesReceived += bytes.length;
          // What these frames let go out (acks advanced, credit returned, requests the replies
          // unblock, once their promise reactions have run) leaves in one write. A reaction may
          // be several promise hops deep (the HAL's await, then the driver's): a tick queued from
          // a microtask runs only once the microtask queue is empty, still in this turn.
          this.link.hold();
          try {
            this.decoder.push(bytes);
          } finally {
            queueMicrotask(() => process.nextTick(() => this.link.release()));
          }
        },
        lost: (reason) => {
          if (this.port === port) this.linkDown(reason);
        },
      },
    );
    this.port = port;
  }

  private write(wire: Uint8Array): void {
    if (!this.port) return;
    this.stats.portWrites++;
    this.port.write(wire);
  }

  private async closePort(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await port.close();
  }

  // ---- HELLO, resync, reconnect -------------------------------------------------------------------

  /**
   * HELLO now, and again every helloRetryMs. `quietMs` after opening the port: the board may have
   * just reset into its bootloader, which would take HELLO for its own commands, so the first goes
   * only when the sketch's boot HELLO has come (onHello) or the bootloader's time is up.
   */
  private startHello(quietMs = 0): void {
    this.helloDeadline = this.clock.now() + this.settings.openTimeoutMs;
    this.helloAttempts = 0;
    this.helloTimer?.cancel();
    if (quietMs > 0) this.helloTimer = this.clock.schedule(quietMs, () => this.sendHello());
    else this.sendHello();
  }

  private helloAttempts = 0;

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
    if (this.helloAttempts === BAUD_FALLBACK_ATTEMPTS + 1 && this.baud !== this.settings.baudRate) {
      // No answer at the rate SET_BAUD chose: the board may have reset (brown-out, reset button)
      // and be back at its compiled-in rate, where its boot HELLO went unheard. Listen there.
      this.baud = this.settings.baudRate;
      this.port.setBaud(this.baud).catch(() => {});
    }
    // Each HELLO proposes a fresh stream origin; only the reply echoing the latest one counts,
    // so a HELLO that crossed the boot HELLO (or a slow reply) cannot restart a live stream. The
    // origin lies outside the acks the old stream can still report, so an ACK from a board that
    // took an earlier HELLO of this resync is never read as one of them. 0x35 is odd: the steps
    // visit all 256 values, and at most 128 are excluded.
    do this.helloSeq = (this.helloSeq + 0x35) & 0xff;
    while (this.link.couldAck(this.helloSeq));
    // Ask for ended DATA frames (a request's DONE in its last DATA frame, caps bit 13): a board
    // without them ignores the option.
    this.write(encodeHostHello(this.helloSeq, HostHelloOption.END_FRAMES));
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
        this.stats.boardResets++;
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
    const advanced = this.boardHello ? (hello.sessions - this.boardHello.sessions) & 0xff : 0;
    const boardReset = this.sawBootHello || !this.boardHello || advanced === 0 || advanced >= 0x80;
    const wasConnecting = this.state === 'connecting';
    const wasResyncing = this.state === 'resyncing';
    this.helloTimer?.cancel();
    this.boardHello = hello;
    this.sawBootHello = false;
    // Whatever the board did not receive before the HELLO goes again, under new sequence numbers,
    // and so does what it executed if that may run twice; in their order. Without the board's
    // report before its answer (lost on the line), a frame sent but not acked may have arrived:
    // its request counts as executed, so a batch that must not run twice never does.
    const reported = !wasResyncing || this.oldStreamReported;
    const again = this.inflight.filter((request) => {
      const received = request.firstFrame < this.link.acknowledged || (!reported && request.firstFrame < this.link.transmittedFrames);
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
    this.link.start(frame.ack, frame.consumed, hello.window);
    this.state = 'ready';
    if (this.connectWaiter) {
      this.connectWaiter.resolve();
      this.connectWaiter = undefined;
    } else if (wasConnecting || boardReset) {
      // A reset found by the session count alone (its boot HELLO was lost on the line) is
      // announced like one seen directly: the link went down with the board, and is back.
      if (boardReset && !wasConnecting && !this.resetAnnounced) {
        this.stats.boardResets++;
        this.emit({ type: 'link-lost', reason: 'board reset' });
      }
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
    this.headTimer.cancel();
    this.link.stop();
    this.startHello();
  }

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
    // The port is opened again at the sketch's compiled-in rate: the board resets when it is (DTR),
    // or lost power with it, and starts at that rate whatever SET_BAUD said.
    this.baud = this.settings.baudRate;
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
          this.startHello(this.settings.bootWaitMs);
        },
        () => this.scheduleReconnect(),
      );
    });
  }

  private failAll(code: HalErrorCode, message: string): void {
    const all = [...this.inflight, ...this.waiting];
    this.inflight = [];
    this.waiting = [];
    this.link.discard();
    for (const request of all) request.reject(new HalError(code, message));
  }

  private cancelTimers(): void {
    this.headTimer.stop();
    this.link.stop();
    this.helloTimer?.cancel();
  }

  private emit(event: HalEvent): void {
    for (const listener of this.eventListeners) listener(event);
  }
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
