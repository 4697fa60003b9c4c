import type { SpiChip } from '../../boards/sim/chip.js';
import { SeededRandom, randomBelow } from '../../src/time/random.js';

/**
 * The wires between an emulated chip and the board, with one fault: what `spinet doctor` must
 * name. Goes between the chip and the mock HAL, or the chip and the simulated board's pins.
 */
export type WiringFault =
  | 'none'
  /** MISO cut: nothing drives the line, the board reads it floating high. */
  | 'miso-cut'
  /** Chip select cut: the chip is never selected and leaves MISO floating. */
  | 'cs-cut'
  /** MISO shorted to ground. */
  | 'miso-stuck-low'
  /** One bit in 300 bytes flipped on MOSI: a long jumper picking up noise. */
  | 'noisy-mosi'
  | 'int-not-wired'
  | 'reset-not-wired';

export class Wiring implements SpiChip {
  private readonly random = new SeededRandom(5);

  constructor(
    readonly chip: SpiChip & { spiDelay?(us: number): void },
    readonly fault: WiringFault,
  ) {}

  spiSelect(): void {
    if (this.fault !== 'cs-cut') this.chip.spiSelect();
  }

  spiExchange(mosi: number): number {
    switch (this.fault) {
      case 'cs-cut':
        return 0xff;
      case 'miso-cut':
        this.chip.spiExchange(mosi);
        return 0xff;
      case 'miso-stuck-low':
        this.chip.spiExchange(mosi);
        return 0x00;
      case 'noisy-mosi':
        return this.chip.spiExchange(randomBelow(this.random, 300) === 0 ? mosi ^ (1 << randomBelow(this.random, 8)) : mosi);
      default:
        return this.chip.spiExchange(mosi);
    }
  }

  spiDeselect(): void {
    if (this.fault !== 'cs-cut') this.chip.spiDeselect();
  }

  spiDelay(us: number): void {
    this.chip.spiDelay?.(us);
  }

  get interruptAsserted(): boolean {
    return this.fault !== 'int-not-wired' && this.chip.interruptAsserted;
  }

  onInterruptChange(listener: (asserted: boolean) => void): () => void {
    return this.fault === 'int-not-wired' ? () => undefined : this.chip.onInterruptChange(listener);
  }

  hardReset(): void {
    if (this.fault !== 'reset-not-wired') this.chip.hardReset();
  }

  reportBusViolation(message: string): void {
    this.chip.reportBusViolation?.(message);
  }

  spiAbort(): void {
    this.chip.spiAbort?.();
  }
}
