import { W5500Emulator, type W5500EmulatorOptions } from '../../hal/w5500/emulator.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';

/** Equal bytes (a boolean: vitest's deep equality is slow on long typed arrays). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Block select values (DS-W §2.2.2). */
export const COMMON = 0;
export const socketRegisters = (n: number) => 4 * n + 1;
export const socketTx = (n: number) => 4 * n + 2;
export const socketRx = (n: number) => 4 * n + 3;

/**
 * Byte-level SPI access to a W5500 emulator for unit tests: each call is one SPI frame (SCSn low,
 * offset, control byte, data, SCSn high), exactly as the datasheet draws it (DS-W §2.2).
 */
export class W5500Probe {
  constructor(
    readonly chip: W5500Emulator,
    readonly clock?: VirtualClock,
  ) {}

  /** Let `ms` pass (on the clock, and so on the chip). */
  settle(ms = 0.1): void {
    this.clock!.advance(ms);
  }

  /** One frame: the bytes MISO returned for every byte clocked, header included. */
  frame(block: number, offset: number, write: boolean, data: readonly number[], om = 0): number[] {
    this.chip.spiSelect();
    const out = [offset >> 8, offset & 0xff, (block << 3) | (write ? 0x04 : 0) | om, ...data].map((b) => this.chip.spiExchange(b));
    this.chip.spiDeselect();
    return out;
  }

  read(block: number, offset: number, count: number): number[] {
    return this.frame(block, offset, false, new Array<number>(count).fill(0)).slice(3);
  }

  write(block: number, offset: number, data: readonly number[]): void {
    this.frame(block, offset, true, data);
  }

  read8(block: number, offset: number): number {
    return this.read(block, offset, 1)[0]!;
  }

  read16(block: number, offset: number): number {
    const [h, l] = this.read(block, offset, 2);
    return (h! << 8) | l!;
  }

  write16(block: number, offset: number, value: number): void {
    this.write(block, offset, [(value >> 8) & 0xff, value & 0xff]);
  }

  /** Socket 0 as the driver sets it up: all 16 KB of each buffer, MACRAW with `mode` options, opened. */
  openMacraw(mode = 0x04, mac?: Uint8Array): void {
    if (mac) this.write(COMMON, 0x0009, [...mac]);
    for (let n = 0; n < 8; n++) this.write(socketRegisters(n), 0x001e, n === 0 ? [16, 16] : [0, 0]);
    this.write(socketRegisters(0), 0x0000, [mode]);
    this.write(socketRegisters(0), 0x0001, [0x01]);
    this.settle();
  }
}

export const OWN = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x01);
export const PEER = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);
export const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** A strict chip on a LAN with a peer that records what reaches it. */
export function w5500Lab(options: Partial<W5500EmulatorOptions> = {}) {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const chip = new W5500Emulator({ clock, strict: true, ...options });
  chip.plugInto(lan);
  clock.advance(5); // auto-negotiation
  const peer = new VirtualNic(lan, PEER);
  const received: Uint8Array[] = [];
  peer.attach({ receive: (f) => received.push(Uint8Array.from(f)), linkChange: () => {} });
  void peer.start();
  return { clock, lan, chip, spi: new W5500Probe(chip, clock), peer, received };
}
