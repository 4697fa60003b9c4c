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

export type HalErrorCode = 'ETIMEDOUT' | 'ELINKLOST' | 'EPROTO' | 'ECLOSED' | 'EINVAL';

export class HalError extends Error {
  constructor(
    readonly code: HalErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HalError';
  }
}
