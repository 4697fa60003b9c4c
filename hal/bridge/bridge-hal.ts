/**
 * The HAL over the serial bridge (docs/bridge-protocol.md): a chip driver's SPI batches, INT line,
 * reset line and the board's spare pins, each turned into requests on a session with the bridge
 * sketch (session.ts), which carries them over a serialport stream through the reliable link
 * (reliable-link.ts).
 *
 * What this façade adds is the contract's side: it checks a batch or a program against what the
 * board said it can do (SHORT headers, DELAYs, programs and their size, §3.2) before anything is
 * sent, and keeps the INT level and pin changes the board reports for the lines' listeners.
 */
import type { Clock } from '../../src/time/clock.js';
import {
  HalError,
  type ArmOptions,
  type Gpio,
  type Hal,
  type HalEvent,
  type InterruptLine,
  type PinMode,
  type ResetLine,
  type SpiDevice,
  type SpiTransaction,
} from '../../src/drivers/hal.js';
import { BRIDGE_DEFAULTS } from './options.js';
import {
  Command,
  EventKind,
  PinModeCode,
  REFERABLE_READ_BYTES,
  batchDelayUs,
  batchReadLength,
  encodeArm,
  encodeCommand,
  encodeSpiCommand,
  extFlags,
  transactionsLength,
  type Hello,
} from './protocol.js';
import { BridgeSession, type BridgeLinkStatus, type BridgeSessionOptions, type BridgeStats } from './session.js';

export type { BridgeLinkStatus, BridgeStats } from './session.js';

export interface BridgeHalOptions extends BridgeSessionOptions {
  /**
   * May this batch run twice? Asked when its reply was lost after the board executed it. A batch
   * that only reads registers, or that sets the chip's read/write pointer before a buffer access,
   * is; one that pops a FIFO or bumps a pointer is not. Default: never.
   */
  readonly isRetryable?: (batch: readonly SpiTransaction[]) => boolean;
  /** The board's fastest SPI clock in bytes/s (BRIDGE_DEFAULTS.spiBytesPerSecond: a 16 MHz AVR). */
  readonly spiBytesPerSecond?: number;
  /** Name in `hal.name` (default: `bridge:<board name>@<path>`). */
  readonly name?: string;
}

const PIN_MODE_CODES: Record<PinMode, number> = {
  input: PinModeCode.INPUT,
  'input-pullup': PinModeCode.INPUT_PULLUP,
  output: PinModeCode.OUTPUT,
  analog: PinModeCode.INPUT,
  pwm: PinModeCode.OUTPUT,
};

export class BridgeHal implements Hal {
  readonly spi: SpiDevice;
  readonly interrupt: InterruptLine;
  readonly reset: ResetLine;
  readonly gpio: Gpio;

  private readonly session: BridgeSession;
  private readonly clock: Clock;
  private readonly isRetryable: (batch: readonly SpiTransaction[]) => boolean;
  private readonly spiBytesPerSecond: number;
  private readonly intListeners = new Set<(asserted: boolean) => void>();
  private readonly pinListeners = new Set<(pin: number, value: 0 | 1) => void>();
  private intLevel = false;
  private intEdges: number | undefined;
  private readonly reportedPins = new Set<number>();

  private constructor(private readonly options: BridgeHalOptions) {
    this.session = new BridgeSession(options, {
      intLevel: (asserted) => this.setIntLevel(asserted),
      event: (payload) => this.onBoardEvent(payload),
    });
    this.clock = this.session.clock;
    this.isRetryable = options.isRetryable ?? (() => false);
    this.spiBytesPerSecond = options.spiBytesPerSecond ?? BRIDGE_DEFAULTS.spiBytesPerSecond;
    const session = this.session;
    this.spi = {
      transfer: (batch) => this.transfer(batch),
      minWriteMs: (bytes) => this.minWriteMs(bytes),
      arm: (program, onRun, armOptions) => this.arm(program, onRun, armOptions),
      disarm: () => this.disarm(),
      runArmed: () => this.runArmed(),
      get maxProgramBytes() {
        return session.maxProgramBytes;
      },
      get transactionDelays() {
        return session.transactionDelays;
      },
      get programExtensions() {
        return session.programExtensions;
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
        await this.session.submit({ encode: (id) => encodeCommand(Command.CHIP_RESET, id, ms & 0xff, ms >>> 8), retryable: true, extraMs: ms });
      },
    };
    this.gpio = this.makeGpio();
  }

  /** Open the port, say HELLO and resolve once the board answered. */
  static async open(options: BridgeHalOptions): Promise<BridgeHal> {
    const hal = new BridgeHal(options);
    try {
      await hal.session.connect();
    } catch (error) {
      await hal.close();
      throw error;
    }
    return hal;
  }

  get name(): string {
    return this.options.name ?? `bridge:${this.hello?.name ?? '?'}@${this.options.path}`;
  }

  /** The board's last HELLO. */
  get hello(): Hello | undefined {
    return this.session.hello;
  }

  /** The link's state right now: credits, requests, the board (for consoles). */
  linkStatus(): BridgeLinkStatus {
    return this.session.linkStatus();
  }

  get stats(): BridgeStats {
    return this.session.stats;
  }

  /** Ready to carry requests (false while the port is gone or a resync runs). */
  get ready(): boolean {
    return this.session.ready;
  }

  /** Why the last resync happened (diagnostics). */
  get lastResyncReason(): string {
    return this.session.lastResyncReason;
  }

  delay(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }

  onEvent(listener: (event: HalEvent) => void): () => void {
    return this.session.onEvent(listener);
  }

  close(): Promise<void> {
    return this.session.close();
  }

  /** Switch both ends to `baud` (the board must advertise SET_BAUD). */
  setBaud(baud: number): Promise<void> {
    return this.session.setBaud(baud);
  }

  /** Round trip through the board's command stream; resolves with the board's free ring bytes. */
  async ping(): Promise<number> {
    return (await this.session.submit({ encode: (id) => encodeCommand(Command.PING, id), retryable: true })).value;
  }

  // ---- SPI ----------------------------------------------------------------------------------------

  /**
   * A floor on the time `bytes` written in one transaction take to reach the chip (SpiDevice):
   * the sketch never holds more than its credit window (plus one decoded frame) of a request, so
   * beyond that the bytes come at the serial line rate; and the board clocks SPI no faster than
   * `spiBytesPerSecond`.
   */
  private minWriteMs(bytes: number): number {
    const buffered = (this.hello?.window ?? 0) + 64;
    const lineMs = (Math.max(0, bytes - buffered) * 10 * 1000) / this.session.baudRate;
    return Math.max(lineMs, (bytes * 1000) / this.spiBytesPerSecond);
  }

  private async transfer(batch: readonly SpiTransaction[]): Promise<Uint8Array> {
    if (batch.length === 0) return new Uint8Array(0);
    const delayUs = checkTransactions(batch);
    if (batch.some((t) => t.ifNonZero !== undefined || t.readLengthFrom !== undefined || extFlags(t) !== 0)) {
      // A batch's reply must have the length it was asked for: that is how a lost frame shows.
      throw new HalError('EINVAL', 'ifNonZero, readLengthFrom, ifSame, ifDiffer and copy are for programs (arm), not transfer()');
    }
    this.checkDelaysSupported(delayUs);
    const copy = copyBatch(batch);
    const reply = await this.session.submit({
      encode: (id) => encodeSpiCommand(id, copy, this.session.encodeOptions),
      readLength: batchReadLength(copy),
      spi: true,
      retryable: this.isRetryable(batch),
      // The board spends the delays on top of the line and SPI time the deadline already counts.
      extraMs: delayUs / 1000,
    });
    return reply.data;
  }

  /** A board without the DELAY flag would read its operand as write bytes: refuse before sending. */
  private checkDelaysSupported(delayUs: number): void {
    if (!this.session.transactionDelays && delayUs > 0) {
      throw new HalError('EUNSUPPORTED', `board ${this.hello?.name ?? '?'} (protocol version ${this.hello?.version ?? '?'}) keeps no transaction delays`);
    }
  }

  // ---- programs (§3.2) ----------------------------------------------------------------------------

  private async arm(transactions: readonly SpiTransaction[], onRun: (result: Uint8Array) => void, options: ArmOptions = {}): Promise<void> {
    if (this.session.maxProgramBytes === 0) {
      throw new HalError('EUNSUPPORTED', `board ${this.hello?.name ?? '?'} (protocol version ${this.hello?.version ?? '?'}) runs no programs`);
    }
    this.checkDelaysSupported(checkTransactions(transactions));
    if (!this.session.programExtensions && transactions.some((t) => extFlags(t) !== 0)) {
      throw new HalError('EUNSUPPORTED', `board ${this.hello?.name ?? '?'} runs no program extensions (ifSame, ifDiffer, copy, minusAt: caps bit 15); flash the current sketch`);
    }
    const program = copyBatch(transactions);
    const problem = this.programProblem(program);
    if (problem) throw new HalError('EINVAL', problem);
    await this.session.arm(program, onRun, options.quietInterrupts ?? false);
  }

  /** Why the board could not run `program` as asked, or undefined. */
  private programProblem(program: readonly SpiTransaction[]): string | undefined {
    if (program.length === 0) return 'empty program';
    const encodeOptions = this.session.encodeOptions;
    try {
      encodeArm(0, program, {}, encodeOptions);
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
      // The EXT operands: any of the first 64 at a fixed position, also once more have been read.
      const kept = Math.min(fixedReads, REFERABLE_READ_BYTES);
      for (const at of [...(t.ifSame ?? []), ...(t.ifDiffer ?? []), ...(t.copy ? [t.copy.from] : []), ...(rule?.minusAt !== undefined ? [rule.minusAt] : [])]) {
        if (at + 1 >= kept) return `a program extension refers to read bytes ${at} and ${at + 1}, but only ${kept} are sure to be kept before it`;
      }
      const duplexReads = t.duplex ? (t.write?.length ?? 0) : 0;
      if (fixed) fixedReads += duplexReads + (rule === undefined ? (t.read ?? 0) : 0);
      if (rule !== undefined) fixed = false;
      mostReads += duplexReads + (t.read ?? 0);
    }
    const size = transactionsLength(program, { ...encodeOptions, ext: program.some((t) => extFlags(t) !== 0) });
    const maxProgramBytes = this.session.maxProgramBytes;
    if (size > maxProgramBytes) return `a program of ${size} bytes (the board takes ${maxProgramBytes})`;
    return undefined;
  }

  private async disarm(): Promise<void> {
    // A board without programs has nothing armed.
    if (this.session.maxProgramBytes === 0) return;
    await this.session.disarm();
  }

  private async runArmed(): Promise<void> {
    if (this.session.maxProgramBytes === 0) return;
    await this.session.submit({ encode: (id) => encodeCommand(Command.RUN, id), retryable: true });
  }

  // ---- INT and pin events -------------------------------------------------------------------------

  private onBoardEvent(payload: Uint8Array): void {
    const [kind, a = 0, b = 0] = payload;
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

  // ---- GPIO ---------------------------------------------------------------------------------------

  private makeGpio(): Gpio {
    const simple = async (command: number, ...args: number[]) =>
      (await this.session.submit({ encode: (id) => encodeCommand(command, id, ...args), retryable: true })).value;
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

/** Open a bridge HAL on a serial port (real or simulated); see BridgeHalOptions. */
export function openBridgeHal(options: BridgeHalOptions): Promise<BridgeHal> {
  return BridgeHal.open(options);
}
