import type { SpiChip } from '../../boards/sim/chip.js';

/**
 * A 256-byte SPI memory in the style of a 25xx EEPROM: `0x02 addr data…` writes, `0x03 addr`
 * then reads with auto-increment; any other opcode answers its own complement (a duplex probe).
 * The test drives its interrupt line.
 */
export class SpiMemoryChip implements SpiChip {
  readonly memory = new Uint8Array(256);
  selects = 0;
  resets = 0;
  /** Bytes clocked while selected, for assertions. */
  readonly mosiLog: number[] = [];
  /** The MOSI bytes of each CS frame (select … deselect), for assertions about framing. */
  readonly csFrames: number[][] = [];
  private opcode: number | undefined;
  private address: number | undefined;
  private selected = false;
  private interrupt = false;
  private readonly listeners = new Set<(asserted: boolean) => void>();

  spiSelect(): void {
    this.selected = true;
    this.selects++;
    this.csFrames.push([]);
    this.opcode = undefined;
    this.address = undefined;
  }

  spiDeselect(): void {
    this.selected = false;
  }

  spiExchange(mosi: number): number {
    if (!this.selected) return 0xff;
    this.mosiLog.push(mosi);
    this.csFrames.at(-1)!.push(mosi);
    if (this.opcode === undefined) {
      this.opcode = mosi;
      return 0x00;
    }
    if (this.opcode !== 0x02 && this.opcode !== 0x03) return ~mosi & 0xff;
    if (this.address === undefined) {
      this.address = mosi;
      return 0x00;
    }
    const at = this.address;
    this.address = (at + 1) & 0xff;
    if (this.opcode === 0x02) {
      this.memory[at] = mosi;
      return 0x00;
    }
    return this.memory[at]!;
  }

  get interruptAsserted(): boolean {
    return this.interrupt;
  }

  setInterrupt(asserted: boolean): void {
    if (asserted === this.interrupt) return;
    this.interrupt = asserted;
    for (const listener of this.listeners) listener(asserted);
  }

  onInterruptChange(listener: (asserted: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  hardReset(): void {
    this.resets++;
    this.memory.fill(0);
  }
}
