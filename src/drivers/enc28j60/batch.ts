import type { SpiTransaction } from '../hal.js';
import {
  ECON1,
  ECON1_BSEL,
  OP_BFC,
  OP_BFS,
  OP_RBM,
  OP_RCR,
  OP_SRC,
  OP_WBM,
  OP_WCR,
  isMacMii,
  registerBank,
} from './registers.js';

/**
 * Builds one SPI batch (one round trip) of ENC28J60 commands. Each command is one chip-select
 * cycle. Reads return an offset into the batch's result.
 *
 * Batches execute in the order they are built, so the driver's model of the selected bank is
 * updated here, at build time, and is exact for the next batch even before this one has run.
 */
export class BankTracker {
  /** ECON1.BSEL as it will be after every batch built so far; undefined when unknown. */
  current: number | undefined = undefined;
  /**
   * The bank every batch ends in, when set. A program on the board (SpiDevice.arm) runs between
   * any two batches and assumes this bank (and leaves it there), so batches must too.
   */
  home: number | undefined = undefined;
}

export class CommandBatch {
  readonly transactions: SpiTransaction[] = [];
  private readBytes = 0;
  private pendingDelayUs = 0;

  constructor(private readonly bank: BankTracker) {}

  get isEmpty(): boolean {
    return this.transactions.length === 0;
  }

  /**
   * The next command waits `us` microseconds on the board first (SpiDevice.transactionDelays):
   * a floor between what came before and it, with no round trip.
   */
  delay(us: number): void {
    this.pendingDelayUs = us;
  }

  private push(transaction: SpiTransaction): void {
    if (this.pendingDelayUs > 0) {
      this.transactions.push({ ...transaction, delayUs: this.pendingDelayUs });
      this.pendingDelayUs = 0;
    } else {
      this.transactions.push(transaction);
    }
  }

  /** The transactions to send: ending in the home bank when there is one. */
  finish(): SpiTransaction[] {
    if (this.bank.home !== undefined && this.transactions.length > 0) this.switchTo(this.bank.home);
    return this.transactions;
  }

  /** RCR. MAC/MII registers shift out a dummy byte first (DS-ENC Figure 4-4). */
  read(register: number): number {
    this.selectBank(register);
    const dummy = isMacMii(register) ? 1 : 0;
    this.push({ write: Uint8Array.of(OP_RCR | (register & 0x1f)), read: 1 + dummy });
    const at = this.readBytes + dummy;
    this.readBytes += 1 + dummy;
    return at;
  }

  write(register: number, value: number): void {
    this.selectBank(register);
    this.push({ write: Uint8Array.of(OP_WCR | (register & 0x1f), value & 0xff) });
    if (register === ECON1) this.bank.current = value & ECON1_BSEL;
  }

  /** Low byte first: ERXRDPT commits on the high byte (DS-ENC §7.2.4), MIWR starts on MIWRH. */
  write16(lowRegister: number, value: number): void {
    this.write(lowRegister, value & 0xff);
    this.write(lowRegister + 1, (value >> 8) & 0xff);
  }

  /** BFS: ETH registers only (DS-ENC §4.2.5). */
  bitSet(register: number, mask: number): void {
    this.bitOp(OP_BFS, register, mask);
  }

  bitClear(register: number, mask: number): void {
    this.bitOp(OP_BFC, register, mask);
  }

  /** RBM of `count` bytes from ERDPT. */
  readBuffer(count: number): number {
    this.push({ write: Uint8Array.of(OP_RBM), read: count });
    const at = this.readBytes;
    this.readBytes += count;
    return at;
  }

  /** WBM at EWRPT: `prefix` then `data`, in one chip-select cycle without copying `data`. */
  writeBuffer(prefix: readonly number[], data?: Uint8Array): void {
    const head = Uint8Array.of(OP_WBM, ...prefix);
    if (data && data.length > 0) {
      this.push({ write: head, keepSelected: true });
      this.push({ write: data });
    } else {
      this.push({ write: head });
    }
  }

  /** SRC. Resets ECON1, so the bank becomes 0. */
  softReset(): void {
    this.push({ write: Uint8Array.of(OP_SRC) });
    this.bank.current = 0;
  }

  /** Forget the bank (after a failed batch: it may or may not have run). */
  static invalidate(bank: BankTracker): void {
    bank.current = undefined;
  }

  private bitOp(op: number, register: number, mask: number): void {
    if (isMacMii(register)) throw new Error('BFS/BFC cannot be used on MAC/MII registers (DS-ENC §4.2.5)');
    this.selectBank(register);
    this.push({ write: Uint8Array.of(op | (register & 0x1f), mask & 0xff) });
  }

  /** Switch banks with BFC/BFS on BSEL only, so TXRTS/RXEN in ECON1 are never disturbed. */
  private selectBank(register: number): void {
    const wanted = registerBank(register);
    if (wanted !== undefined) this.switchTo(wanted);
  }

  private switchTo(wanted: number): void {
    const current = this.bank.current;
    if (current === wanted) return;
    const clear = current === undefined ? ECON1_BSEL : current & ~wanted & ECON1_BSEL;
    const set = current === undefined ? wanted : wanted & ~current & ECON1_BSEL;
    if (clear) this.push({ write: Uint8Array.of(OP_BFC | ECON1, clear) });
    if (set) this.push({ write: Uint8Array.of(OP_BFS | ECON1, set) });
    this.bank.current = wanted;
  }
}
