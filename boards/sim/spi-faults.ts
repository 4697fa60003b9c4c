import { randomUnit, type Random } from '../../src/time/random.js';
import type { SpiChip } from './chip.js';

/**
 * SPI read errors: a chip whose answers (MISO) have a bit flipped now and then — a long ribbon
 * cable, a marginal 3.3 V level, a ground bounce. Wrap the emulated chip on a simulated board's SPI
 * pins; the driver must turn every corrupted read into a counted drop or a recovery, never data.
 */
export interface SpiFaultStats {
  /** Bytes the chip answered. */
  exchanged: number;
  /** Of those, bytes with a bit flipped. */
  corrupted: number;
}

export class FaultySpiChip implements SpiChip {
  readonly stats: SpiFaultStats = { exchanged: 0, corrupted: 0 };
  /** Probability per byte read that one bit comes back flipped (0: a clean bus). */
  readErrorRate = 0;
  /** A deliberate edit of each byte read (a test's targeted corruption), after the random one. */
  tamper: ((miso: number) => number) | undefined;

  constructor(
    readonly inner: SpiChip,
    private readonly random: Random,
  ) {}

  get interruptAsserted(): boolean {
    return this.inner.interruptAsserted;
  }

  spiSelect(): void {
    this.inner.spiSelect();
  }

  spiExchange(mosi: number): number {
    let miso = this.inner.spiExchange(mosi);
    this.stats.exchanged++;
    if (this.readErrorRate > 0 && randomUnit(this.random) < this.readErrorRate) {
      this.stats.corrupted++;
      miso ^= 1 << (this.random.u32() & 7);
    }
    return this.tamper ? this.tamper(miso) : miso;
  }

  spiDeselect(): void {
    this.inner.spiDeselect();
  }

  onInterruptChange(listener: (asserted: boolean) => void): () => void {
    return this.inner.onInterruptChange(listener);
  }

  hardReset(): void {
    this.inner.hardReset();
  }
}
