import type { SpiTransaction } from '../hal.js';
import { BSB_COMMON, CONTROL_WRITE, OM_VDM, Sn_CR, bsbSocketRegisters, bsbSocketRx, bsbSocketTx } from './registers.js';

/**
 * One SPI batch (one round trip over the serial bridge) of W5500 frames. Each frame is one
 * chip-select cycle: offset, control byte, data (DS-W §2.2, variable length mode). Reads return
 * where their bytes start in the batch's result.
 */
export class FrameBatch {
  readonly transactions: SpiTransaction[] = [];
  private readBytes = 0;
  private pendingDelayUs = 0;

  get isEmpty(): boolean {
    return this.transactions.length === 0;
  }

  /** Bytes this batch reads (the result's length). */
  get resultLength(): number {
    return this.readBytes;
  }

  /** The next frame waits `us` microseconds on the board first (SpiDevice.transactionDelays). */
  delay(us: number): void {
    this.pendingDelayUs = Math.max(this.pendingDelayUs, us);
  }

  /** Read `count` bytes of a block from `offset` on (auto-increment). */
  read(bsb: number, offset: number, count: number): number {
    this.push({ write: header(bsb, offset, false), read: count });
    const at = this.readBytes;
    this.readBytes += count;
    return at;
  }

  readCommon(offset: number, count: number): number {
    return this.read(BSB_COMMON, offset, count);
  }

  readSocket(socket: number, offset: number, count: number): number {
    return this.read(bsbSocketRegisters(socket), offset, count);
  }

  /** `count` bytes of socket n's RX buffer from pointer `at` (the chip wraps it in the buffer). */
  readRx(socket: number, pointer: number, count: number): number {
    return this.read(bsbSocketRx(socket), pointer & 0xffff, count);
  }

  write(bsb: number, offset: number, data: readonly number[]): void {
    const bytes = new Uint8Array(3 + data.length);
    bytes.set(header(bsb, offset, true));
    bytes.set(data, 3);
    this.push({ write: bytes });
  }

  writeCommon(offset: number, data: readonly number[]): void {
    this.write(BSB_COMMON, offset, data);
  }

  writeSocket(socket: number, offset: number, data: readonly number[]): void {
    this.write(bsbSocketRegisters(socket), offset, data);
  }

  /** A 16-bit socket register, high byte first (DS-W §4.2). */
  writeSocket16(socket: number, offset: number, value: number): void {
    this.writeSocket(socket, offset, [(value >> 8) & 0xff, value & 0xff]);
  }

  command(socket: number, command: number): void {
    this.writeSocket(socket, Sn_CR, [command]);
  }

  /** `data` into socket n's TX buffer at `pointer`, in one chip-select cycle without copying it. */
  writeTx(socket: number, pointer: number, data: Uint8Array): void {
    this.push({ write: header(bsbSocketTx(socket), pointer & 0xffff, true), keepSelected: true });
    this.push({ write: data });
  }

  finish(): SpiTransaction[] {
    return this.transactions;
  }

  private push(transaction: SpiTransaction): void {
    if (this.pendingDelayUs > 0) {
      this.transactions.push({ ...transaction, delayUs: this.pendingDelayUs });
      this.pendingDelayUs = 0;
    } else {
      this.transactions.push(transaction);
    }
  }
}

/** Offset (big-endian) and control byte: block, read/write, variable length. */
function header(bsb: number, offset: number, write: boolean): Uint8Array {
  return Uint8Array.of((offset >> 8) & 0xff, offset & 0xff, bsb | (write ? CONTROL_WRITE : 0) | OM_VDM);
}
