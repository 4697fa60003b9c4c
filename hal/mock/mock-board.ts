import type { Clock } from '../../src/time/clock.js';
import type { VirtualLan } from '../lan/switch.js';
import { MockHal, type InterruptSource, type LinkModel, type SpiSlave } from './mock-hal.js';

/** What a board needs from an emulated chip: its SPI side, its pins, and its cable. */
export interface EmulatedChip extends SpiSlave, InterruptSource {
  /** The reset line was pulsed (released now). */
  hardReset(): void;
  plugInto(lan: VirtualLan): void;
  unplug(): void;
}

export interface MockBoardOptions {
  clock: Clock;
  lan: VirtualLan;
  /** Simulate the serial bridge's speed and latency; omitted = instant SPI. */
  linkModel?: LinkModel;
  /** Largest arm() program the mock board takes (MockHalOptions.maxProgramBytes): default 64, 0 = none. */
  maxProgramBytes?: number;
  /** The mock board honours SpiTransaction.delayUs (MockHalOptions.transactionDelays): default true. */
  transactionDelays?: boolean;
  /** The chip's interrupt pin reaches the board (default true); false: a module whose INT is not wired. */
  interruptWired?: boolean;
  name: string;
}

export interface MockBoard<Chip extends EmulatedChip, Driver> {
  hal: MockHal;
  emulator: Chip;
  nic: Driver;
}

/**
 * An emulated chip on the virtual LAN behind the mock HAL, with a driver on top: what
 * `spinet run --board mock --chip …` opens, for any chip. Call `nic.start()` to bring it up.
 */
export function createMockBoard<Chip extends EmulatedChip, Driver>(options: MockBoardOptions, emulator: Chip, driver: (hal: MockHal) => Driver): MockBoard<Chip, Driver> {
  emulator.plugInto(options.lan);
  const hal = new MockHal({
    clock: options.clock,
    slave: emulator,
    interrupt: options.interruptWired === false ? undefined : emulator,
    reset: emulator,
    linkModel: options.linkModel,
    maxProgramBytes: options.maxProgramBytes,
    transactionDelays: options.transactionDelays,
    name: `mock:${options.name}`,
  });
  return { hal, emulator, nic: driver(hal) };
}
