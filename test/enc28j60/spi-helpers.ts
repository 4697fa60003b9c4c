import { Enc28j60Emulator, EMU_REGISTERS, type EmuRegisterName } from '../../hal/enc28j60/emulator.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';

/**
 * Direct, byte-level SPI access to an emulator for unit tests: each call is one chip-select
 * cycle, exactly as the datasheet draws it.
 */
export class SpiProbe {
  constructor(readonly chip: Enc28j60Emulator) {}

  cycle(bytes: number[]): number[] {
    this.chip.spiSelect();
    const out = bytes.map((b) => this.chip.spiExchange(b));
    this.chip.spiDeselect();
    return out;
  }

  bank(bank: number): void {
    this.cycle([0xa0 | 0x1f, 0x03]); // BFC ECON1 BSEL
    if (bank) this.cycle([0x80 | 0x1f, bank]);
  }

  private select(name: EmuRegisterName): number {
    const [bank, address] = EMU_REGISTERS[name];
    if (bank >= 0) this.bank(bank);
    return address;
  }

  /** RCR; `dummy` adds the MAC/MII dummy byte. */
  read(name: EmuRegisterName, dummy = false): number {
    const address = this.select(name);
    const out = this.cycle(dummy ? [address, 0, 0] : [address, 0]);
    return out[out.length - 1]!;
  }

  /** MAADR5..0 = the address's octets in order (the registers are scrambled across bank 3). */
  writeMac(mac: Uint8Array): void {
    (['MAADR5', 'MAADR4', 'MAADR3', 'MAADR2', 'MAADR1', 'MAADR0'] as const).forEach((name, i) => this.write(name, mac[i]!));
  }

  write(name: EmuRegisterName, value: number): void {
    const address = this.select(name);
    this.cycle([0x40 | address, value]);
  }

  write16(low: EmuRegisterName, value: number): void {
    const address = this.select(low);
    this.cycle([0x40 | address, value & 0xff]);
    this.cycle([0x40 | (address + 1), value >> 8]);
  }

  read16(low: EmuRegisterName): number {
    const address = this.select(low);
    const l = this.cycle([address, 0])[1]!;
    const h = this.cycle([address + 1, 0])[1]!;
    return l | (h << 8);
  }

  bfs(name: EmuRegisterName, mask: number): void {
    this.cycle([0x80 | this.select(name), mask]);
  }

  bfc(name: EmuRegisterName, mask: number): void {
    this.cycle([0xa0 | this.select(name), mask]);
  }

  readBuffer(count: number): number[] {
    return this.cycle([0x3a, ...new Array<number>(count).fill(0)]).slice(1);
  }

  writeBuffer(bytes: number[]): void {
    this.cycle([0x7a, ...bytes]);
  }

  softReset(): void {
    this.cycle([0xff]);
  }

  writePhy(address: number, value: number): void {
    this.write('MIREGADR', address);
    this.write('MIWRL', value & 0xff);
    this.write('MIWRH', value >> 8);
  }

  /** Starts an MII read; the caller waits for BUSY to clear before calling finishPhyRead. */
  startPhyRead(address: number): void {
    this.write('MIREGADR', address);
    this.write('MICMD', 0x01);
  }

  finishPhyRead(): number {
    this.write('MICMD', 0x00);
    return this.read('MIRDL', true) | (this.read('MIRDH', true) << 8);
  }
}

export function strictChip(clock = new VirtualClock()): { clock: VirtualClock; chip: Enc28j60Emulator; spi: SpiProbe } {
  const chip = new Enc28j60Emulator({ clock, strict: true });
  return { clock, chip, spi: new SpiProbe(chip) };
}

/** An Ethernet II frame: dst, src, type 0x88B5 (local experimental), payload of `length` total bytes. */
export function makeFrame(dst: Uint8Array, src: Uint8Array, length: number, seed = 0): Uint8Array {
  const frame = new Uint8Array(length);
  frame.set(dst, 0);
  frame.set(src, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  for (let i = 14; i < length; i++) frame[i] = (i * 7 + seed * 13) & 0xff;
  if (length >= 18) {
    frame[14] = seed & 0xff;
    frame[15] = (seed >> 8) & 0xff;
    frame[16] = (seed >> 16) & 0xff;
    frame[17] = length & 0xff;
  }
  return frame;
}

/** An interrupt line the test drives: what the mock HAL mirrors to the driver. */
export class PinSource {
  interruptAsserted = false;
  private readonly listeners = new Set<(asserted: boolean) => void>();

  onInterruptChange(listener: (asserted: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(level: boolean): void {
    this.interruptAsserted = level;
    for (const listener of this.listeners) listener(level);
  }
}
