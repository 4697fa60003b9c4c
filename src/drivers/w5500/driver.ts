import { HalError, type Hal } from '../hal.js';
import type { Clock } from '../../time/clock.js';
import { RearmableTimer } from '../../time/timer.js';
import { emptyNicStats, type Nic, type NicCapabilities, type NicHandlers, type NicStats } from '../../link/nic.js';
import { countDrop } from '../../stats/counters.js';
import { formatMac, type MacAddress } from '../../wire/address.js';
import { INTERFRAME_GAP_BYTES, byteTimeMs, frameWireTimeMs } from '../../wire/wire-time.js';
import { WorkLoop } from '../work-loop.js';
import { SafetyNetPoll } from '../safety-net.js';
import { FrameBatch } from './batch.js';
import { RX_RUN_HEADER_BYTES, receiveProgram } from './rx-program.js';
import { W5500_DEFAULTS, type W5500Options } from './options.js';
import * as R from './registers.js';
import type { ChipStatus } from '../status.js';
import { NO_TRACE, type TraceHook } from '../../stats/trace.js';

/**
 * W5500 driver over a HAL, socket 0 in MACRAW mode: the chip moves raw Ethernet frames and the
 * host does all of TCP/IP (WIZnet W5500 datasheet v1.0.9; facts and sources in docs/w5500.md).
 *
 * Every SPI batch is a round trip over the serial bridge, so the driver is built around batches,
 * in two independent chains as the ENC28J60 driver's:
 * - receive, on a board that runs programs with extensions: the receive program (rx-program.ts)
 *   stays on the board, which runs it on every INTn edge and again while it finds frames, and
 *   streams every byte received back unasked: no round trip per frame. Otherwise:
 * - receive: an INTn edge (or the poll) costs one service batch that clears RECV and reads the
 *   receive pointers twice (a 16-bit register can change between its two bytes: two reads that
 *   agree are the truth). When frames wait, one batch reads every byte received — all the frames,
 *   back to back — moves Sn_RX_RD past them, issues RECV and reads the pointers again twice: a
 *   burst costs one batch per wave of frames, not one per frame. Every length header is checked
 *   before it is used, and the frames must fill the read exactly.
 * - transmit: one batch writes the frame at Sn_TX_WR, moves Sn_TX_WR and issues SEND. How far the
 *   chip has sent is read from Sn_TX_RD (SEND moves it past a frame once it is on the wire) by
 *   that batch and every later one; SEND_OK is masked in Sn_IMR, so it neither holds INTn low nor
 *   costs a batch per frame. A send follows the previous one before its answer is back once the
 *   previous frame is certainly off the wire when the new SEND reaches the chip.
 * Every answer also carries Sn_CR, Sn_SR (0x42 while socket 0 is open: a reset underneath or a
 * chip that stopped answering shows there) and PHYCFGR (the link: the W5500 has no link
 * interrupt). Recovery never restarts the stack: a bad length header is flushed, then the socket
 * opened again; a stuck command or a reset underneath re-initialises the chip.
 */

export type W5500ErrorCode = 'ENODEV' | 'EIO';

export class W5500Error extends Error {
  constructor(
    readonly code: W5500ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'W5500Error';
  }
}

export interface W5500NicConfig {
  hal: Hal;
  clock: Clock;
  mac: MacAddress;
  name?: string;
  options?: Partial<W5500Options>;
  /** Report what the driver, the chip's buffers and the link to the board did with each frame. */
  trace?: TraceHook;
}

/** Things the driver recovered from or worked around, by name (not drops). */
export type W5500Events = Record<string, number>;

/** A frame handed to the chip by SEND, until Sn_TX_RD shows it sent. */
interface TxRecord {
  readonly frame: Uint8Array;
  /** Its bytes in the TX pointer space: [start, start + frame.length). */
  readonly start: number;
  /** When the batch that issued its SEND answered (the SEND ran before). */
  answeredAt?: number;
}

type ResultHandler = (result: Uint8Array) => void;

/** Socket 0 runs MACRAW (DS-W §4.2 Sn_MR: MACRAW is socket 0's only). */
const SOCKET = 0;
/** All 16 KB of each buffer to socket 0. */
const BUFFER_BYTES = R.TOTAL_BUFFER_KB * 1024;
/** Sn_CR, Sn_IR, Sn_SR: one read of 3 bytes from Sn_CR. */
const STATUS_BYTES = 3;
/** Smallest length header: the 2 header bytes and an Ethernet header. */
const MIN_RECORD = R.MACRAW_HEADER_BYTES + 14;
const MAX_RECORD = R.MACRAW_HEADER_BYTES + R.MACRAW_MAX_FRAME;

/** A frame's time on the wire at the negotiated speed, and the gap before the next one. */
function wireTimeMs(frameLength: number, mbps: number): number {
  return frameWireTimeMs(frameLength, mbps) + INTERFRAME_GAP_BYTES * byteTimeMs(mbps);
}

export class W5500Nic implements Nic {
  readonly name: string;
  readonly mac: MacAddress;
  readonly mtu = 1500;
  readonly capabilities: NicCapabilities = {
    maxFrameSize: R.MACRAW_MAX_FRAME,
    multicastFilter: false,
    rxCrcCheck: true,
    // The chip holds 16 KB of received frames, each behind its 2-byte length.
    receiveBuffer: { bytes: BUFFER_BYTES, frameOverhead: R.MACRAW_HEADER_BYTES },
  };
  readonly events: W5500Events = {};
  /** The last unexpected exception inside the driver (a bug), for tests and diagnostics. */
  lastInternalError: unknown;

  private readonly hal: Hal;
  private readonly clock: Clock;
  private readonly trace: TraceHook;
  private readonly options: W5500Options;
  private readonly counters: NicStats = emptyNicStats();
  private handlers: NicHandlers | undefined;

  private running = false;
  private up = false;
  /** VERSIONR as read at the last initialisation. */
  private version: number | undefined;
  /** The chip's MAC filter off (Sn_MR without MFEN): set by options or setPromiscuous(). */
  private promiscuous: boolean;
  /** PHYCFGR.SPD: 100 Mbit/s (else 10). */
  private mbps = 100;

  // Work flags.
  private readonly work = new WorkLoop(() => this.step(), (error) => this.onError(error));
  private needsInit = false;
  private initNotBefore = 0;
  private errorBackoff: number;
  private paused = false;
  private reopenReason: string | undefined;
  private interruptPending = false;
  private pollPending = false;
  /** The last pointer reads disagreed, or frames may wait: read them again. */
  private rxRecheck = false;
  /** A check of Sn_TX_RD is due (a frame's completion, or its timeout). */
  private txCheckPending = false;
  /** When a batch reading Sn_TX_RD twice was last built. */
  private txCheckedAt = -Infinity;
  private inFlightBatches = 0;
  private rxBatchOut = false;
  private txBatchesOut = 0;
  /** Bumped when the chip is re-initialised or socket 0 opened again: answers from before are stale. */
  private epoch = 0;
  private multicastJoined = 0;
  /** Sn_MR as socket 0 was last opened with. */
  private openMode = 0;
  /** Answers in a row that showed Sn_CR not yet accepted. */
  private commandNotAccepted = 0;
  private badHeaderStreak = 0;
  /** The receive program is armed on the board: its runs bring the frames, no batch asks for them. */
  private rxProgram = false;

  // Receive model.
  /** Sn_RX_RD as the driver last wrote it: everything before is taken. */
  private rxRead = 0;
  /** Sn_RX_WR from the last two reads that agreed (undefined: unknown). */
  private rxWrite: number | undefined;

  // Transmit model.
  private readonly txQueue: Uint8Array[] = [];
  /** Sn_TX_WR as the driver last wrote it. */
  private txWrite = 0;
  /** Sn_TX_RD as last read (how far the chip has sent). */
  private txRead = 0;
  private readonly txInFlight: TxRecord[] = [];
  /** A frame was in flight when the link went down: the transmitter may be stuck (open the socket again). */
  private txSuspect = false;

  private readonly pollTimer: RearmableTimer;
  /** The safety-net poll's period (src/drivers/safety-net.ts). */
  private readonly poll: SafetyNetPoll;
  private readonly wakeTimer: RearmableTimer;
  private unsubscribers: (() => void)[] = [];

  constructor(config: W5500NicConfig) {
    this.hal = config.hal;
    this.clock = config.clock;
    this.mac = Uint8Array.from(config.mac);
    this.name = config.name ?? `w5500-${formatMac(this.mac)}`;
    this.options = { ...W5500_DEFAULTS, ...config.options };
    this.trace = config.trace ?? NO_TRACE;
    this.errorBackoff = this.options.errorBackoffMs;
    this.promiscuous = this.options.promiscuous;
    this.pollTimer = new RearmableTimer(this.clock, () => this.onPoll());
    const baseMs = this.options.interruptLine ? this.options.pollIntervalMs : this.options.noInterruptPollMs;
    this.poll = new SafetyNetPoll(this.pollTimer, baseMs, this.options.idlePollIntervalMs);
    this.wakeTimer = new RearmableTimer(this.clock, () => this.onWake());
  }

  get linkUp(): boolean {
    return this.up;
  }

  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }

  stats(): NicStats {
    return this.counters;
  }

  /** The chip's state as the driver knows it (src/drivers/status.ts). */
  status(): ChipStatus {
    return {
      chip: 'W5500',
      linkUp: this.up,
      speedMbps: this.mbps,
      revision: this.version === undefined ? undefined : `VERSIONR 0x${hex(this.version)}`,
      promiscuous: this.promiscuous,
      ringBytes: BUFFER_BYTES,
      // Received and not yet taken, by the last pointer reads that agreed.
      ringUsed: this.available(),
      // The W5500 counts bytes (Sn_RX_RSR), not frames, and drops silently when its buffer is full.
      packetsWaiting: undefined,
      overflows: undefined,
      transmitQueue: this.txQueue.length + this.txInFlight.length,
      transmitErrors: this.events['tx-timeout'] ?? 0,
    };
  }

  /**
   * Receive every frame on the wire, not only ours (Sn_MR without MFEN, DS-W §4.2; taken at
   * OPEN, so socket 0 is opened again). The stack above still ignores frames not addressed to it.
   */
  setPromiscuous(on: boolean): void {
    if (this.promiscuous === on) return;
    this.promiscuous = on;
    this.filterChanged();
  }

  // ---- Start / stop ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    await this.initialise();
    this.running = true;
    if (this.options.interruptLine) {
      this.unsubscribers.push(
        this.hal.interrupt.onChange((asserted) => {
          if (!asserted) return;
          this.poll.interruptSeen();
          this.interruptPending = true;
          this.work.kick();
        }),
      );
    }
    this.unsubscribers.push(
      this.hal.onEvent((event) => {
        if (event.type === 'link-lost') {
          // Nothing reaches the chip until the bridge is back: to the stack the link is down.
          this.paused = true;
          this.setLink(false);
        } else {
          this.paused = false;
          this.scheduleReinit('hal-link-restored');
        }
      }),
    );
    this.poll.start();
    this.rxRecheck = true; // whatever arrived during initialisation
    this.work.kick();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.pollTimer.stop();
    this.wakeTimer.stop();
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
    try {
      await this.disarmReceiveProgram();
      const batch = new FrameBatch();
      batch.writeCommon(R.SIMR, [0]);
      batch.command(SOCKET, R.Sn_CR_CLOSE);
      await this.hal.spi.transfer(batch.finish());
    } catch {
      // Best effort: the chip may already be gone.
    }
    for (const _frame of this.txQueue.splice(0)) countDrop(this.counters.drops, 'stopped');
    this.txInFlight.length = 0;
    this.setLink(false);
  }

  // ---- Transmit API ---------------------------------------------------------------------------

  transmit(frame: Uint8Array): boolean {
    if (frame.length < 14 || frame.length > this.capabilities.maxFrameSize) {
      countDrop(this.counters.drops, 'bad-length');
      return false;
    }
    if (!this.running || !this.up) {
      countDrop(this.counters.drops, 'link-down');
      return false;
    }
    if (this.txQueue.length >= this.options.txQueueLimit) {
      countDrop(this.counters.drops, 'tx-queue-full');
      return false;
    }
    this.txQueue.push(frame);
    this.poll.frameMoved();
    this.trace.emit?.('driver', 'out', `queued for the chip (${this.txQueue.length - 1} frame${this.txQueue.length === 2 ? '' : 's'} ahead, ${this.txInFlight.length} on the way)`, frame);
    this.work.kick();
    return true;
  }

  /** Multicast: with MFEN the chip takes only frames to us and broadcasts, so a group turns it off; the stack filters exactly. */
  joinMulticast(_mac: MacAddress): void {
    this.multicastJoined++;
    this.filterChanged();
  }

  leaveMulticast(_mac: MacAddress): void {
    this.multicastJoined = Math.max(0, this.multicastJoined - 1);
    this.filterChanged();
  }

  private filterChanged(): void {
    // Sn_MR is taken at OPEN: a new filter means opening socket 0 again.
    if (this.running && this.socketMode() !== this.openMode) {
      this.reopenReason ??= 'filter-change';
      this.work.kick();
    }
  }

  /** MACRAW; MFEN and MIP6B unless frames for others are wanted (promiscuous, or a multicast group). */
  private socketMode(): number {
    if (this.promiscuous) return R.Sn_MR_MACRAW;
    if (this.multicastJoined > 0) return R.Sn_MR_MACRAW | R.Sn_MR_MIP6B;
    return R.Sn_MR_MACRAW | R.Sn_MR_MFEN | R.Sn_MR_MIP6B;
  }

  // ---- Initialisation (DS-W §4; docs/w5500.md, Initialisation) ------------------------------

  private async initialise(): Promise<void> {
    const o = this.options;
    this.epoch++;
    this.requeueInFlight();
    await this.disarmReceiveProgram();

    // A chip starting up (PLL lock, ≤ 1 ms after RSTn) answers nothing useful: wait for VERSIONR.
    let version = 0;
    for (let attempt = 0; attempt < o.readyAttempts; attempt++) {
      version = await this.readCommon(R.VERSIONR);
      if (version === R.W5500_VERSION) break;
      await this.hal.delay(o.readyDelayMs);
    }
    if (version === 0x00 || version === 0xff) {
      throw new W5500Error(
        'ENODEV',
        `no W5500 answering on SPI (VERSIONR reads 0x${hex(version)}: MISO is ${version === 0 ? 'held low' : 'floating high'}) — ` +
          'check the SPI wiring (MISO, MOSI, SCK), the chip-select pin, 3.3 V power and the reset line',
      );
    }

    // Soft reset: every register to its reset value; MR.RST reads 1 until it is done (DS-W §4.1 MR).
    let batch = new FrameBatch();
    batch.writeCommon(R.MR, [R.MR_RST]);
    await this.hal.spi.transfer(batch.finish());
    let mr = R.MR_RST;
    for (let attempt = 0; attempt < o.resetAttempts && mr & R.MR_RST; attempt++) {
      await this.hal.delay(o.resetPollMs);
      mr = await this.readCommon(R.MR);
    }
    if (mr & R.MR_RST) throw new W5500Error('EIO', `the W5500 soft reset did not finish (MR still 0x${hex(mr)} after ${o.resetAttempts * o.resetPollMs} ms)`);

    // What a W5500 reads after a reset: VERSIONR 0x04 and RTR 0x07D0 (LNX-WIZ checks RTR).
    batch = new FrameBatch();
    const versionAt = batch.readCommon(R.VERSIONR, 1);
    const rtrAt = batch.readCommon(R.RTR, 2);
    let r = await this.hal.spi.transfer(batch.finish());
    const rtr = (r[rtrAt]! << 8) | r[rtrAt + 1]!;
    this.version = r[versionAt];
    if (r[versionAt] !== R.W5500_VERSION || rtr !== R.RTR_RESET) {
      throw new W5500Error(
        'ENODEV',
        `the SPI device is not a W5500 (VERSIONR 0x${hex(r[versionAt]!)}, RTR 0x${rtr.toString(16).padStart(4, '0')} after reset; ` +
          'expected 0x04 and 0x07d0) — a different chip, or another device on this chip select?',
      );
    }

    // Configuration: the chip's own ping answer off, our MAC, interrupts off while we set up, all
    // 16 KB of each buffer to socket 0 (the others first go to 0, so the sum never passes 16 KB),
    // RECV only in Sn_IMR (a masked bit is never set: SEND_OK would hold INTn low for nothing).
    this.openMode = this.socketMode();
    batch = new FrameBatch();
    batch.writeCommon(R.MR, [R.MR_PB]);
    batch.writeCommon(R.SHAR, [...this.mac]);
    batch.writeCommon(R.IMR, [0]);
    batch.writeCommon(R.SIMR, [0]);
    for (let socket = 1; socket < 8; socket++) batch.writeSocket(socket, R.Sn_RXBUF_SIZE, [0, 0]);
    batch.writeSocket(SOCKET, R.Sn_RXBUF_SIZE, [R.TOTAL_BUFFER_KB, R.TOTAL_BUFFER_KB]);
    batch.writeSocket(SOCKET, R.Sn_IMR, [R.Sn_IR_RECV]);
    batch.writeSocket(SOCKET, R.Sn_MR, [this.openMode]);
    const sharAt = batch.readCommon(R.SHAR, 6);
    const sizesAt = batch.readSocket(SOCKET, R.Sn_RXBUF_SIZE, 2);
    const modeAt = batch.readSocket(SOCKET, R.Sn_MR, 1);
    r = await this.hal.spi.transfer(batch.finish());
    const shar = r.subarray(sharAt, sharAt + 6);
    if (shar.some((b, i) => b !== this.mac[i]) || r[sizesAt] !== R.TOTAL_BUFFER_KB || r[sizesAt + 1] !== R.TOTAL_BUFFER_KB || r[modeAt] !== this.openMode) {
      throw new W5500Error(
        'EIO',
        `W5500 register writes do not stick (SHAR read back ${formatMac(Uint8Array.from(shar))}, S0 buffers ${r[sizesAt]}/${r[sizesAt + 1]} KB, ` +
          `S0_MR 0x${hex(r[modeAt]!)}): check the SPI wiring (MOSI, SCK) and the supply`,
      );
    }

    await this.openSocket();
    this.needsInit = false;
    this.errorBackoff = this.options.errorBackoffMs;
  }

  /**
   * OPEN socket 0 in MACRAW (DS-W §4.2 Sn_CR): Sn_CR reads 0 once accepted, Sn_SR turns 0x42 a little
   * later. Then the pointers OPEN set, INTn on (SIMR), and the link.
   */
  private async openSocket(): Promise<void> {
    await this.command(R.Sn_CR_OPEN, (sr) => sr === R.SOCK_MACRAW, 'open in MACRAW mode');
    const batch = new FrameBatch();
    batch.writeSocket(SOCKET, R.Sn_IR, [0xff]);
    batch.writeCommon(R.SIMR, [this.options.interruptLine ? 0x01 : 0x00]);
    // Sn_TX_RD, Sn_TX_WR, then (past Sn_RX_RSR) Sn_RX_RD: where OPEN put them.
    const pointersAt = batch.readSocket(SOCKET, R.Sn_TX_RD, 8);
    const phyAt = batch.readCommon(R.PHYCFGR, 1);
    const r = await this.hal.spi.transfer(batch.finish());
    const u16 = (at: number) => (r[pointersAt + at]! << 8) | r[pointersAt + at + 1]!;
    this.txRead = u16(0);
    this.txWrite = u16(2);
    this.rxRead = u16(6);
    this.rxWrite = undefined;
    this.rxRecheck = true;
    this.commandNotAccepted = 0;
    this.badHeaderStreak = 0;
    this.txSuspect = false;
    this.noteLink(r[phyAt]!);
    await this.armReceiveProgram();
  }

  /**
   * Leave the receive program on the board if it runs one (rx-program.ts): from here on its runs
   * bring every frame, in order with the batches' answers. A board that cannot keeps the batches.
   */
  private async armReceiveProgram(): Promise<void> {
    const spi = this.hal.spi;
    if (!this.options.receiveProgram || !spi.programExtensions || !spi.arm) return;
    const epoch = this.epoch;
    try {
      await spi.arm(receiveProgram(SOCKET, BUFFER_BYTES), (result) => this.onRun(result, epoch), { quietInterrupts: true });
    } catch (error) {
      // Too large for this board, or no extensions after all: receive by batches.
      if (error instanceof HalError && (error.code === 'EINVAL' || error.code === 'EUNSUPPORTED')) {
        this.count('rx-program-refused');
        return;
      }
      throw error;
    }
    this.rxProgram = true;
  }

  /** Take the program off the board before the socket changes under it (a run between would read stale pointers). */
  private async disarmReceiveProgram(): Promise<void> {
    if (!this.rxProgram) return;
    this.rxProgram = false;
    await this.hal.spi.disarm?.();
  }

  private onRun(result: Uint8Array, epoch: number): void {
    if (epoch !== this.epoch || !this.rxProgram) return;
    this.work.handle(() => this.takeRun(result));
    this.work.kick();
  }

  /** A run's answer: Sn_RX_RD, Sn_RX_WR twice, and when they agreed and differed, every byte from RD to WR. */
  private takeRun(r: Uint8Array): void {
    if (r.length < RX_RUN_HEADER_BYTES) {
      this.count('rx-run-refused');
      return;
    }
    const u16 = (at: number) => (r[at]! << 8) | r[at + 1]!;
    const rd = u16(0), wr = u16(2), again = u16(4);
    // The last run left Sn_RX_RD where it read to: elsewhere, a run's answer was lost on the link
    // (its frames with it, already freed on the chip).
    if (rd !== this.rxRead) this.count('rx-runs-lost');
    this.rxRead = rd;
    if (wr !== again) {
      // Torn: a frame came in between the reads; its INTn edge runs the program again, and so does this.
      this.count('rx-pointer-reread');
      this.hal.spi.runArmed?.().catch((error: unknown) => this.onError(error));
      return;
    }
    const length = (wr - rd) & 0xffff;
    if (length === 0) return;
    if (length > BUFFER_BYTES) {
      this.count('rx-pointer-insane');
      this.reopenReason ??= 'rx-pointer-reopen';
      return;
    }
    this.rxRead = wr;
    this.poll.frameReceived();
    this.absorb(r.subarray(RX_RUN_HEADER_BYTES, RX_RUN_HEADER_BYTES + length));
  }

  /** Close socket 0 and open it again (pointers reset, a stuck transmitter freed; frames in it are lost). */
  private async reopen(reason: string): Promise<void> {
    this.reopenReason = undefined;
    this.count(reason);
    this.count('socket-reopen');
    this.epoch++;
    this.requeueInFlight();
    await this.disarmReceiveProgram();
    await this.command(R.Sn_CR_CLOSE, (sr) => sr === R.SOCK_CLOSED, 'close');
    this.openMode = this.socketMode();
    const batch = new FrameBatch();
    batch.writeSocket(SOCKET, R.Sn_MR, [this.openMode]);
    await this.hal.spi.transfer(batch.finish());
    await this.openSocket();
  }

  /** Issue a socket command and wait (bounded) until Sn_CR reads 0 and Sn_SR is what it should become. */
  private async command(command: number, done: (sr: number) => boolean, what: string): Promise<void> {
    const o = this.options;
    let batch = new FrameBatch();
    batch.command(SOCKET, command);
    await this.hal.spi.transfer(batch.finish());
    let cr = command;
    let sr = -1;
    for (let attempt = 0; attempt < o.commandAttempts; attempt++) {
      await this.hal.delay(o.commandPollMs);
      batch = new FrameBatch();
      const at = batch.readSocket(SOCKET, R.Sn_CR, STATUS_BYTES);
      const r = await this.hal.spi.transfer(batch.finish());
      cr = r[at]!;
      sr = r[at + 2]!;
      if (cr === 0 && done(sr)) return;
    }
    throw new W5500Error(
      'EIO',
      `W5500 socket 0 did not ${what} within ${o.commandAttempts * o.commandPollMs} ms (Sn_CR 0x${hex(cr)}, Sn_SR 0x${hex(sr)})`,
    );
  }

  private async readCommon(offset: number): Promise<number> {
    const batch = new FrameBatch();
    const at = batch.readCommon(offset, 1);
    return (await this.hal.spi.transfer(batch.finish()))[at]!;
  }

  // ---- The work loop --------------------------------------------------------------------------

  /** Build and run one batch of whatever is due. False when there is nothing to do now. */
  private async step(): Promise<boolean> {
    if (!this.running || this.paused) return false;
    // These sequences wait on their own answers, with no other batch touching the socket.
    if ((this.needsInit || this.reopenReason !== undefined) && this.inFlightBatches > 0) return false;
    if (this.needsInit) {
      if (this.clock.now() < this.initNotBefore) {
        this.wakeAtTime(this.initNotBefore);
        return false;
      }
      this.count('reinit');
      await this.initialise();
      return true;
    }
    if (this.reopenReason !== undefined) {
      await this.reopen(this.reopenReason);
      return true;
    }

    if (this.clock.now() >= this.txCheckAt()) this.txCheckPending = true;
    const batch = new FrameBatch();
    const handlers: ResultHandler[] = [];
    let receives = false;
    if (this.rxProgram) {
      // The program receives; the poll only looks at the socket and the link, then runs it once.
      if (this.pollPending && !this.rxBatchOut) {
        handlers.push(this.planArmedPoll(batch));
        receives = true;
      }
    } else if (!this.rxBatchOut) {
      if (this.available() > 0) {
        handlers.push(this.planRead(batch));
        receives = true;
      } else if (this.serviceDue()) {
        handlers.push(this.planService(batch));
        receives = true;
      }
    }
    const tx = this.planTransmit(batch) ?? this.planTxCheck(batch);
    if (tx) handlers.push(tx);
    if (batch.isEmpty) {
      this.armWakeTimer();
      return false;
    }
    const epoch = this.epoch;
    if (receives) this.rxBatchOut = true;
    if (tx) this.txBatchesOut++;
    this.inFlightBatches++;
    const settle = () => {
      this.inFlightBatches--;
      if (receives) this.rxBatchOut = false;
      if (tx) this.txBatchesOut--;
    };
    this.hal.spi.transfer(batch.finish()).then(
      (result) => {
        settle();
        if (epoch === this.epoch) {
          this.work.handle(() => {
            for (const handle of handlers) handle(result);
          });
          // INTn is a level: still low means another frame came in after the last clear.
          if (receives && this.options.interruptLine && this.hal.interrupt.asserted) this.interruptPending = true;
        }
        this.work.kick();
      },
      (error: unknown) => {
        settle();
        if (epoch === this.epoch) this.onError(error);
        this.work.kick();
      },
    );
    return true;
  }

  /** Bytes received (whole frames) and not yet taken, by the last agreeing reads. */
  private available(): number {
    return this.rxWrite === undefined ? 0 : (this.rxWrite - this.rxRead) & 0xffff;
  }

  private serviceDue(): boolean {
    if (this.pollPending || this.rxRecheck) return true;
    // An edge whose level is gone was a frame an earlier read already took.
    return this.interruptPending && (this.hal.interrupt.asserted || !this.options.interruptLine);
  }

  // ---- Receive --------------------------------------------------------------------------------

  /**
   * Service (INTn, a re-read after a torn one, the poll): clear RECV first, so any frame stored
   * after this point raises INTn again, then Sn_RX_WR twice (and Sn_TX_RD twice while frames are
   * in flight). The poll also reads the socket's status and the link; after an edge the read that
   * follows reads the status.
   */
  private planService(batch: FrameBatch): ResultHandler {
    const poll = this.pollPending || !this.options.interruptLine;
    this.interruptPending = false;
    this.pollPending = false;
    this.rxRecheck = false;
    const status = poll ? this.planStatus(batch) : () => true;
    batch.writeSocket(SOCKET, R.Sn_IR, [R.Sn_IR_RECV]);
    const rxWrite = this.planRxWrite(batch);
    const txRead = this.txInFlight.length > 0 ? this.planTxRead(batch) : undefined;
    const phyAt = poll ? batch.readCommon(R.PHYCFGR, 1) : -1;
    return (r) => {
      if (!status(r)) return;
      if (poll) this.noteLink(r[phyAt]!);
      txRead?.(r);
      rxWrite(r);
    };
  }

  /** The poll with the receive program armed: the socket's status and the link, then a run (a missed INTn edge). */
  private planArmedPoll(batch: FrameBatch): ResultHandler {
    this.pollPending = false;
    this.interruptPending = false;
    this.rxRecheck = false;
    const status = this.planStatus(batch);
    const phyAt = batch.readCommon(R.PHYCFGR, 1);
    return (r) => {
      if (!status(r)) return;
      this.noteLink(r[phyAt]!);
      const run = this.hal.spi.runArmed?.();
      if (!run) return;
      this.poll.pollRunStarted(run);
      run.catch((error: unknown) => this.onError(error));
    };
  }

  /**
   * Read every byte received since Sn_RX_RD in one transaction: whole frames, each behind its
   * length (docs/w5500.md, MACRAW). Sn_RX_RD moves past them and RECV frees the space in the same batch
   * (with RECV's clear in the same SPI frame: Sn_CR and Sn_IR are neighbours) — a bad header found
   * in them later is then already flushed. Then Sn_RX_WR again, for the frames that came meanwhile,
   * and the socket's status.
   */
  private planRead(batch: FrameBatch): ResultHandler {
    const start = this.rxRead;
    const length = this.available();
    this.interruptPending = false;
    const dataAt = batch.readRx(SOCKET, start, length);
    this.rxRead = (start + length) & 0xffff;
    batch.writeSocket16(SOCKET, R.Sn_RX_RD, this.rxRead);
    batch.writeSocket(SOCKET, R.Sn_CR, [R.Sn_CR_RECV, R.Sn_IR_RECV]);
    const rxWrite = this.planRxWrite(batch);
    const status = this.planStatus(batch);
    return (r) => {
      if (!status(r)) return;
      this.absorb(r.subarray(dataAt, dataAt + length));
      rxWrite(r);
    };
  }

  /**
   * Frames back to back: each a 2-byte big-endian length that counts itself (2 < len ≤ 1516, and
   * within what was read), then the frame. A bad header is a counted drop of the rest (already
   * freed by RECV); bad headers in a row mean the socket is opened again (zephyr PR#46701).
   */
  private absorb(data: Uint8Array): void {
    let at = 0;
    while (at < data.length) {
      const length = data.length - at >= 2 ? (data[at]! << 8) | data[at + 1]! : 0;
      if (length < MIN_RECORD || length > MAX_RECORD || at + length > data.length) {
        countDrop(this.counters.drops, 'rx-bad-header');
        this.count('rx-flush');
        if (++this.badHeaderStreak >= this.options.badHeaderReopenAfter) this.reopenReason ??= 'rx-reopen';
        return;
      }
      const frame = data.subarray(at + R.MACRAW_HEADER_BYTES, at + length);
      if (this.trace.emit) {
        this.trace.emit('chip', 'in', `in socket 0's receive buffer behind its 2-byte length (${length} bytes, stored without its FCS)`, frame);
        this.trace.emit('bridge', 'in', `read by a receive batch over ${this.hal.name}, ${data.length} bytes in one SPI read`, frame);
        this.trace.emit('driver', 'in', 'length header checked; Sn_RX_RD moved and RECV issued in the same batch; handed to the stack', frame);
      }
      this.counters.rxFrames++;
      this.counters.rxBytes += frame.length;
      this.deliver(frame);
      at += length;
    }
    this.badHeaderStreak = 0;
  }

  private deliver(frame: Uint8Array): void {
    try {
      this.handlers?.receive(frame);
    } catch (error) {
      // The consumer's bug must not look like a chip failure.
      this.count('receive-handler-threw');
      this.lastInternalError = error;
    }
  }

  /**
   * Sn_RX_WR twice: a 16-bit register can change between its two bytes (DS-W p.55: "read all
   * 16-bits twice or more until getting the same value"); Sn_RX_RSR is Sn_RX_WR − Sn_RX_RD, and
   * Sn_RX_WR does not depend on when RECV's update of the chip's read pointer lands.
   */
  private planRxWrite(batch: FrameBatch): (r: Uint8Array) => void {
    const firstAt = batch.readSocket(SOCKET, R.Sn_RX_WR, 2);
    const secondAt = batch.readSocket(SOCKET, R.Sn_RX_WR, 2);
    return (r) => {
      const first = (r[firstAt]! << 8) | r[firstAt + 1]!;
      const rxWrite = (r[secondAt]! << 8) | r[secondAt + 1]!;
      if (first !== rxWrite) {
        this.count('rx-pointer-reread');
        this.rxRecheck = true;
        return;
      }
      // Whole frames since our Sn_RX_RD: never more than the buffer holds.
      if (((rxWrite - this.rxRead) & 0xffff) > BUFFER_BYTES) {
        this.count('rx-pointer-insane');
        this.reopenReason ??= 'rx-pointer-reopen';
        return;
      }
      this.rxWrite = rxWrite;
    };
  }

  /** Sn_TX_RD twice; when the reads agree, every frame it has passed is sent. */
  private planTxRead(batch: FrameBatch): (r: Uint8Array) => void {
    this.txCheckPending = false;
    this.txCheckedAt = this.clock.now();
    const firstAt = batch.readSocket(SOCKET, R.Sn_TX_RD, 2);
    const secondAt = batch.readSocket(SOCKET, R.Sn_TX_RD, 2);
    return (r) => {
      const first = (r[firstAt]! << 8) | r[firstAt + 1]!;
      const txRead = (r[secondAt]! << 8) | r[secondAt + 1]!;
      if (first === txRead) this.noteTxRead(txRead);
    };
  }

  /** A completion check with no receive work to ride on: Sn_TX_RD twice, the status and the link. */
  private planTxCheck(batch: FrameBatch): ResultHandler | undefined {
    if (!this.txCheckPending || this.txBatchesOut > 0 || this.txInFlight.length === 0) return undefined;
    const status = this.planStatus(batch);
    const txRead = this.planTxRead(batch);
    const phyAt = batch.readCommon(R.PHYCFGR, 1);
    return (r) => {
      if (!status(r)) return;
      this.noteLink(r[phyAt]!);
      txRead(r);
    };
  }

  /**
   * Sn_CR, Sn_IR, Sn_SR. The check, given the answer: false (and re-initialisation due) when
   * socket 0 is no longer open in MACRAW — a reset underneath, or a chip that reads all zeros or
   * all ones — or when a command has not been accepted for `stuckCommandReads` answers.
   */
  private planStatus(batch: FrameBatch): (r: Uint8Array) => boolean {
    const at = batch.readSocket(SOCKET, R.Sn_CR, STATUS_BYTES);
    return (r) => {
      const cr = r[at]!, sr = r[at + 2]!;
      if (sr !== R.SOCK_MACRAW) {
        // 0x00: closed by a reset underneath (or MISO held low); 0xFF: MISO floating.
        this.scheduleReinit(sr === 0 ? 'chip-reset' : sr === 0xff ? 'chip-silent' : 'socket-state');
        return false;
      }
      if (cr !== 0) {
        if (++this.commandNotAccepted >= this.options.stuckCommandReads) {
          this.scheduleReinit('stuck-command');
          return false;
        }
      } else {
        this.commandNotAccepted = 0;
      }
      return true;
    };
  }

  // ---- Transmit -------------------------------------------------------------------------------

  /** A send if one can go now (free space, the previous frame off the wire in time), else nothing. */
  private planTransmit(batch: FrameBatch): ResultHandler | undefined {
    const frame = this.txQueue[0];
    if (!frame || !this.up || this.txSuspect) return undefined;
    const maxSendsOut = this.hal.spi.transactionDelays ? 4 : 2;
    if (this.txBatchesOut >= maxSendsOut) return undefined;
    // The chip may hold at most its buffer of data not yet sent (Sn_TX_FSR); txRead lags behind it.
    const pending = (this.txWrite - this.txRead) & 0xffff;
    if (pending + frame.length > BUFFER_BYTES) {
      this.txCheckPending = this.txBatchesOut === 0;
      return undefined;
    }
    const delayUs = this.followDelayUs(frame);
    if (delayUs === undefined) return undefined;
    return this.planSend(batch, delayUs);
  }

  /**
   * The SEND for `next` must reach the chip after the last frame sent is off the wire (a SEND
   * while one is on the wire is undefined; every driver waits for SEND_OK). 0 when that is
   * certain (its wire time is over, or writing `next` takes longer: SpiDevice.minWriteMs), else the
   * µs the board waits before the SEND (SpiTransaction.delayUs), or undefined: not now.
   */
  private followDelayUs(next: Uint8Array): number | undefined {
    const previous = this.txInFlight.at(-1);
    if (!previous) return 0;
    const wireMs = wireTimeMs(previous.frame.length, this.mbps) + this.options.txFollowMarginMs;
    // Its SEND ran before its batch answered; with the batch still out, at the latest right before this one.
    const sinceSendMs = previous.answeredAt !== undefined ? this.clock.now() - previous.answeredAt : 0;
    const neededMs = wireMs - sinceSendMs;
    if (neededMs <= 0) return 0;
    if ((this.hal.spi.minWriteMs?.(next.length) ?? 0) >= neededMs) return 0;
    if (this.hal.spi.transactionDelays) return Math.ceil(neededMs * 1000);
    if (previous.answeredAt !== undefined) this.wakeAtTime(previous.answeredAt + wireMs);
    return undefined;
  }

  /**
   * Write the frame at Sn_TX_WR, move Sn_TX_WR past it, SEND (DS-W p.54–55), then read the
   * socket's status and how far the chip has sent.
   */
  private planSend(batch: FrameBatch, delayUs: number): ResultHandler {
    const frame = this.txQueue.shift()!;
    const record: TxRecord = { frame, start: this.txWrite };
    const builtAt = this.clock.now();
    if (this.trace.emit) {
      const hex16 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
      this.trace.emit('driver', 'out', `SPI batch: ${frame.length} bytes written at Sn_TX_WR, Sn_TX_WR moved, SEND${delayUs > 0 ? ` after a ${delayUs} µs wait on the board` : ''}`, frame);
      this.trace.emit('chip', 'out', `socket 0's transmit buffer ${hex16(this.txWrite)}–${hex16((this.txWrite + frame.length) & 0xffff)}; on SEND the MAC adds preamble, padding and FCS: ${(wireTimeMs(frame.length, this.mbps) * 1000).toFixed(0)} µs on the wire at ${this.mbps} Mbit/s`, frame);
    }
    batch.writeTx(SOCKET, this.txWrite, frame);
    this.txWrite = (this.txWrite + frame.length) & 0xffff;
    batch.writeSocket16(SOCKET, R.Sn_TX_WR, this.txWrite);
    if (delayUs > 0) batch.delay(delayUs);
    batch.command(SOCKET, R.Sn_CR_SEND);
    this.txInFlight.push(record);
    const status = this.planStatus(batch);
    const txReadAt = batch.readSocket(SOCKET, R.Sn_TX_RD, 2);
    return (r) => {
      record.answeredAt = this.clock.now();
      this.trace.emit?.('bridge', 'out', `batch carried to the board over ${this.hal.name} and answered ${(record.answeredAt - builtAt).toFixed(2)} ms after it was built`, frame);
      if (!status(r)) return;
      // Read right after the SEND: it shows earlier frames sent, not this one (a single read
      // can tear; noteTxRead only trusts a value within what is in flight).
      this.noteTxRead((r[txReadAt]! << 8) | r[txReadAt + 1]!);
      this.armWakeTimer();
    };
  }

  /** Sn_TX_RD as read: every frame it has passed is sent. A value outside what is in flight is ignored (a torn read). */
  private noteTxRead(txRead: number): void {
    const oldest = this.txInFlight[0];
    if (!oldest) {
      if (txRead === this.txWrite) this.txRead = txRead;
      return;
    }
    const progress = (txRead - oldest.start) & 0xffff;
    if (progress > ((this.txWrite - oldest.start) & 0xffff)) return;
    this.txRead = txRead;
    while (this.txInFlight.length > 0) {
      const first = this.txInFlight[0]!;
      if (((txRead - first.start) & 0xffff) < first.frame.length) break;
      this.txInFlight.shift();
      this.trace.emit?.('chip', 'out', 'sent: Sn_TX_RD has moved past it', first.frame);
      this.counters.txFrames++;
      this.counters.txBytes += first.frame.length;
    }
    this.checkTxTimeout();
  }

  /** The oldest frame not sent long after its SEND: the transmitter is stuck (the link went away under it). */
  private checkTxTimeout(): void {
    const oldest = this.txInFlight[0];
    if (oldest?.answeredAt === undefined) return;
    if (this.clock.now() - oldest.answeredAt < this.options.txTimeoutMs) return;
    this.count('tx-timeout');
    this.reopenReason ??= 'tx-stuck';
  }

  /** Frames the chip may not have sent (socket opened again, chip re-initialised): back to the queue, in order. */
  private requeueInFlight(): void {
    const unsent = this.txInFlight.splice(0).map((record) => record.frame);
    if (this.up) this.txQueue.unshift(...unsent);
    else for (const _frame of unsent) countDrop(this.counters.drops, 'link-down');
  }

  // ---- Link (PHYCFGR, DS-W §4.1) --------------------------------------------------------------

  private noteLink(phycfgr: number): void {
    this.mbps = phycfgr & R.PHYCFGR_SPD ? 100 : 10;
    const up = (phycfgr & R.PHYCFGR_LNK) !== 0 && (phycfgr & R.PHYCFGR_RST) !== 0;
    if (!up && this.up && this.txInFlight.length > 0) this.txSuspect = true;
    if (up && !this.up && this.txSuspect) this.reopenReason ??= 'link-flap-tx';
    this.setLink(up);
  }

  private setLink(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (!up) for (const _ of this.txQueue.splice(0)) countDrop(this.counters.drops, 'link-down');
    this.count(up ? 'link-up' : 'link-down');
    this.handlers?.linkChange(up);
  }

  // ---- Timers and errors ----------------------------------------------------------------------

  private onPoll(): void {
    if (!this.running) return;
    this.poll.rearm(this.rxProgram && this.options.interruptLine);
    if (this.rxBatchOut) return; // a receive batch is out: it sees what a poll would
    this.pollPending = true;
    this.work.kick();
  }

  /** When a check of Sn_TX_RD is due: the last frame's completion, or the oldest one's timeout. */
  private txCheckAt(): number {
    const last = this.txInFlight.at(-1);
    const oldest = this.txInFlight[0];
    if (last?.answeredAt === undefined || oldest?.answeredAt === undefined) return Infinity;
    // After the last frame's wire time; then again every txCheckDelayMs while one is still not
    // sent; and once more at the oldest one's timeout.
    let checkAt = last.answeredAt + wireTimeMs(last.frame.length, this.mbps) + this.options.txCheckDelayMs;
    if (this.txCheckedAt >= checkAt) checkAt = this.txCheckedAt + this.options.txCheckDelayMs;
    const timeoutAt = oldest.answeredAt + this.options.txTimeoutMs;
    return this.txCheckedAt < timeoutAt ? Math.min(checkAt, timeoutAt) : checkAt;
  }

  /** Wake when the check is due (step() then plans it). */
  private armWakeTimer(): void {
    const at = this.txCheckAt();
    if (at !== Infinity && at > this.clock.now()) this.wakeAtTime(at);
  }

  /** Look again at `at` (the earliest of the times asked for). */
  private wakeAtTime(at: number): void {
    if (this.wakeTimer.armed && this.wakeTimer.deadline <= at) return;
    this.wakeTimer.arm(at - this.clock.now());
  }

  private onWake(): void {
    if (this.txInFlight.length > 0 && this.clock.now() >= this.txCheckAt()) this.txCheckPending = true;
    this.work.kick();
  }

  private scheduleReinit(reason: string): void {
    this.count(reason);
    this.needsInit = true;
    this.rxWrite = undefined;
    this.work.kick();
  }

  private onError(error: unknown): void {
    // Nothing escapes the loop: a failed batch may or may not have run, so start over cleanly.
    this.epoch++;
    const code = error instanceof HalError || error instanceof W5500Error ? error.code : 'internal';
    this.count(`error-${code}`);
    this.needsInit = true;
    this.rxWrite = undefined;
    this.initNotBefore = this.clock.now() + this.errorBackoff;
    this.errorBackoff = Math.min(this.errorBackoff * 2, 1000);
    if (!(error instanceof HalError) && !(error instanceof W5500Error)) this.lastInternalError = error;
    // The chip is not there (or not a W5500) until an initialisation succeeds: no link meanwhile.
    if (error instanceof W5500Error) this.setLink(false);
    // The board may still run the program: initialise() takes it off first.
    this.wakeAtTime(this.initNotBefore);
  }

  private count(event: string): void {
    this.events[event] = (this.events[event] ?? 0) + 1;
  }
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
