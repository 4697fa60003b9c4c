import type { MacAddress } from '../../src/wire/address.js';
import { W5500Emulator, type W5500EmulatorOptions } from '../w5500/emulator.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import type { W5500Options } from '../../src/drivers/w5500/options.js';
import { createMockBoard, type MockBoard, type MockBoardOptions } from './mock-board.js';

export interface MockW5500BoardOptions extends Omit<MockBoardOptions, 'name'> {
  mac: MacAddress;
  /** Emulator strict mode (driver misuse reported); default true. */
  strict?: boolean;
  onStrictViolation?: (message: string) => void;
  /** The emulator's timing options (SPI clock, wire time, auto-negotiation). */
  chip?: Pick<W5500EmulatorOptions, 'spiClockHz' | 'rxWireTime' | 'autonegotiationMs'>;
  driverOptions?: Partial<W5500Options>;
  name?: string;
}

export type MockW5500Board = MockBoard<W5500Emulator, W5500Nic>;

/**
 * An emulated W5500 on the virtual LAN behind the mock HAL, with the driver on top:
 * `spinet run --board mock --chip w5500` in one call. Call `nic.start()` to bring it up.
 */
export function createMockW5500Board(options: MockW5500BoardOptions): MockW5500Board {
  const name = options.name ?? 'w5500';
  const emulator = new W5500Emulator({
    clock: options.clock,
    strict: options.strict ?? true,
    onStrictViolation: options.onStrictViolation,
    label: name,
    ...options.chip,
  });
  const driverOptions = { ...(options.interruptWired === false ? { interruptLine: false } : {}), ...options.driverOptions };
  return createMockBoard({ ...options, name }, emulator, (hal) => new W5500Nic({ hal, clock: options.clock, mac: options.mac, name, options: driverOptions }));
}
