/**
 * The hardware abstraction layer: what a chip driver needs from the board, and nothing more.
 * Implemented by the mock HAL (hal/mock/, an emulated chip in-process) and the serial-bridge HAL
 * (hal/bridge/, a real or simulated board over a serial link).
 */

/** One SPI transaction: chip-select asserted, `write` bytes clocked out, then `read` bytes clocked in. */
export interface SpiTransaction {
  /** Bytes clocked out first (MOSI). */
  readonly write?: Uint8Array;
  /** Then this many bytes are clocked in (MOSI sends 0x00). */
  readonly read?: number;
  /**
   * Full duplex: the bytes clocked in *while* `write` is clocked out are returned too (before the
   * `read` bytes). Off by default: most chip commands ignore MISO during the opcode.
   */
  readonly duplex?: boolean;
  /** Leave chip-select asserted after this transaction (the next one continues it). */
  readonly keepSelected?: boolean;
  /**
   * Programs only (SpiDevice.arm): run this transaction, and every later one of the batch, only if
   * byte `ifNonZero` of the bytes this batch has read so far (counted from 0) is not zero;
   * otherwise the rest of the batch is skipped (nothing clocked, chip-select released). A byte can
   * be referred to once read and while the batch has read at most 64 (the board's buffer).
   */
  readonly ifNonZero?: number;
  /**
   * Programs only: the number of bytes to read is computed from two bytes this batch has read
   * (by the same rule as `ifNonZero`; not this transaction's own DUPLEX bytes): the 16-bit value at `at` (little-endian unless `bigEndian`), minus
   * `minus` (0–63, floored at 0), rounded up to even if `even`, capped at `read` (which stays the
   * maximum). The ENC28J60's receive header says how long the frame after it is.
   */
  readonly readLengthFrom?: ReadLengthRule;
  /**
   * Wait this many microseconds (1–65535) before this transaction, after everything before it has
   * run: a floor between two SPI events that the driver needs (a frame's wire time before the next
   * TXRST), without a round trip to time it. Only where SpiDevice.transactionDelays is true.
   */
  readonly delayUs?: number;
  /**
   * Programs only, where SpiDevice.programExtensions: run this transaction and the rest of the
   * batch only if the 16-bit values at read bytes [0] and [1] are equal (two reads of a register
   * agreed). Unlike ifNonZero, these refer to any of the batch's first 64 read bytes once read,
   * also after more have been read.
   */
  readonly ifSame?: readonly [number, number];
  /** Programs with extensions: run this and the rest only if the two 16-bit values differ. */
  readonly ifDiffer?: readonly [number, number];
  /**
   * Programs with extensions: write bytes `at` and `at`+1 of this transaction are read bytes
   * `from` and `from`+1 (an address or a pointer the run read earlier).
   */
  readonly copy?: { readonly at: number; readonly from: number };
}

export interface ReadLengthRule {
  readonly at: number;
  readonly bigEndian?: boolean;
  readonly minus?: number;
  readonly even?: boolean;
  /**
   * Programs with extensions: subtract the 16-bit value at read bytes `minusAt` (same byte order)
   * first, mod 2^16 — a distance between two pointers the run read.
   */
  readonly minusAt?: number;
}

/** How a program runs (SpiDevice.arm). */
export interface ArmOptions {
  /**
   * While armed, the board sends no interrupt-line events (the program's results say what the
   * driver needs); `InterruptLine` then only changes with other traffic.
   */
  readonly quietInterrupts?: boolean;
}

/** SPI bus with the chip's chip-select. */
export interface SpiDevice {
  /**
   * Run a batch of transactions in order and resolve with every byte read, concatenated in
   * transaction order. Several batches may be in flight at once; they execute in call order.
   * Rejects with a HalError.
   */
  transfer(batch: readonly SpiTransaction[]): Promise<Uint8Array>;
  /**
   * Optional timing floor: `bytes` written in one transaction of a batch take at least this many
   * milliseconds to reach the chip, counted from when the previous batch has finished on the
   * chip (the SPI clock, and a serial link that carries them no faster than its line rate beyond
   * what the board has buffered). A driver may rely on it to overlap work with a write; a HAL
   * that cannot promise anything leaves it out.
   */
  minWriteMs?(bytes: number): number;
  /**
   * Optional: leave a *program* — a batch the board keeps and runs by itself, with no round trip —
   * and run it whenever the chip's interrupt line falls, again after every run that was not cut
   * short by an `ifNonZero` test, after every batch that ends with the line still asserted, and on
   * runArmed(). `onRun` gets each run's read bytes, in order with transfer() answers (a run happens
   * between two batches, never inside one). A run whose answer was lost on the link is not
   * reported: the driver must notice from what the next run reads. Programs are small (the board
   * says how small: `maxProgramBytes`, encoded size) and may use ifNonZero / readLengthFrom.
   * Resolves once the board has the program; rejects with HalError EUNSUPPORTED when it cannot
   * run programs, EINVAL when this one is too large. Arming again replaces the program. The HAL
   * re-arms by itself when it resynchronises with a board that did not reset; a board reset
   * (link-restored with boardReset) disarms, and the driver arms again after re-initialising.
   */
  arm?(program: readonly SpiTransaction[], onRun: (result: Uint8Array) => void, options?: ArmOptions): Promise<void>;
  /** Stop running the program. Runs that happened before are still reported before this resolves. */
  disarm?(): Promise<void>;
  /** Run the armed program once now, in order with transfer() (a poll: a missed edge, a chip erratum). */
  runArmed?(): Promise<void>;
  /** Encoded size limit for arm() programs on the connected board (0: no programs). */
  readonly maxProgramBytes?: number;
  /** The board honours SpiTransaction.delayUs (in transfer() and programs). */
  readonly transactionDelays?: boolean;
  /** Programs may use ifSame, ifDiffer, copy and ReadLengthRule.minusAt. */
  readonly programExtensions?: boolean;
}

/** The chip's interrupt output (the ENC28J60's INT is active low; `asserted` hides that). */
export interface InterruptLine {
  readonly asserted: boolean;
  /** Called on every change; returns an unsubscribe function. */
  onChange(listener: (asserted: boolean) => void): () => void;
}

export interface ResetLine {
  /** Hold the chip in reset for `lowMs`, then release it. */
  pulse(lowMs: number): Promise<void>;
}

export type PinMode = 'input' | 'input-pullup' | 'output' | 'analog' | 'pwm';

/** The board's spare pins (johnny-five uses these through the IO plugin). */
export interface Gpio {
  readonly pinCount: number;
  pinMode(pin: number, mode: PinMode): Promise<void>;
  digitalWrite(pin: number, value: 0 | 1): Promise<void>;
  digitalRead(pin: number): Promise<0 | 1>;
  analogRead(pin: number): Promise<number>;
  pwmWrite(pin: number, duty: number): Promise<void>;
  /** Pin-change reports for input pins; returns an unsubscribe function. */
  onPinChange(listener: (pin: number, value: 0 | 1) => void): () => void;
}

export type HalEvent =
  | { type: 'link-lost'; reason: string }
  | { type: 'link-restored'; boardReset: boolean };

export interface Hal {
  readonly name: string;
  readonly spi: SpiDevice;
  readonly interrupt: InterruptLine;
  readonly reset?: ResetLine;
  readonly gpio?: Gpio;
  /** Wait `ms` on the HAL's clock (virtual in tests). */
  delay(ms: number): Promise<void>;
  /** Link-level events (serial port vanished, came back, board reset). */
  onEvent(listener: (event: HalEvent) => void): () => void;
  close(): Promise<void>;
}

export type HalErrorCode = 'ETIMEDOUT' | 'ELINKLOST' | 'EPROTO' | 'ECLOSED' | 'EINVAL' | 'EUNSUPPORTED';

export class HalError extends Error {
  constructor(
    readonly code: HalErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HalError';
  }
}
