/**
 * What the simulated boards need from the chip on their SPI bus: the byte-level slave interface
 * the ENC28J60 emulator (hal/enc28j60/emulator.ts) implements, and the tests' SPI memory
 * (test/bridge/spi-memory-chip.ts) for tests that are about the bridge, not the Ethernet chip.
 */
export interface SpiChip {
  spiSelect(): void;
  spiExchange(mosi: number): number;
  spiDeselect(): void;
  readonly interruptAsserted: boolean;
  onInterruptChange(listener: (asserted: boolean) => void): () => void;
  hardReset(): void;
  /**
   * Optional: the board reports how the bus itself was driven wrong (SPI mode, bit order, chip
   * select raised mid-byte or too soon); a strict chip passes it on with its own reports.
   */
  reportBusViolation?(message: string): void;
  /**
   * Optional: chip select released because the board reset or lost power in the middle of a
   * command. The chip sees CS rise as always; a strict chip does not hold the cut short command
   * against the driver.
   */
  spiAbort?(): void;
}
