import type { Clock } from '../../src/time/clock.js';
import type { MacAddress } from '../../src/wire/address.js';
import type { VirtualLan } from '../lan/switch.js';
import { Enc28j60Emulator } from '../enc28j60/emulator.js';
import { Enc28j60Nic } from '../../src/drivers/enc28j60/driver.js';
import type { Enc28j60Options } from '../../src/drivers/enc28j60/options.js';
import { MockHal, type LinkModel } from './mock-hal.js';

export interface MockEnc28j60BoardOptions {
  clock: Clock;
  lan: VirtualLan;
  mac: MacAddress;
  /** Simulate the serial bridge's speed and latency; omitted = instant SPI. */
  linkModel?: LinkModel;
  /** Largest arm() program the mock board takes (MockHalOptions.maxProgramBytes): default 64, 0 = none. */
  maxProgramBytes?: number;
  /** The mock board honours SpiTransaction.delayUs (MockHalOptions.transactionDelays): default true. */
  transactionDelays?: boolean;
  /** Emulator strict mode (driver misuse reported); default true. */
  strict?: boolean;
  onStrictViolation?: (message: string) => void;
  driverOptions?: Partial<Enc28j60Options>;
  name?: string;
}

export interface MockEnc28j60Board {
  hal: MockHal;
  emulator: Enc28j60Emulator;
  nic: Enc28j60Nic;
}

/**
 * An emulated ENC28J60 on the virtual LAN behind the mock HAL, with the driver on top:
 * `spinet run --board mock --chip enc28j60` in one call. Call `nic.start()` to bring it up.
 */
export function createMockEnc28j60Board(options: MockEnc28j60BoardOptions): MockEnc28j60Board {
  const name = options.name ?? 'enc28j60';
  const emulator = new Enc28j60Emulator({
    clock: options.clock,
    strict: options.strict ?? true,
    onStrictViolation: options.onStrictViolation,
    mac: options.mac,
    label: name,
  });
  emulator.plugInto(options.lan);
  const hal = new MockHal({
    clock: options.clock,
    slave: emulator,
    interrupt: emulator,
    reset: emulator,
    linkModel: options.linkModel,
    maxProgramBytes: options.maxProgramBytes,
    transactionDelays: options.transactionDelays,
    name: `mock:${name}`,
  });
  const nic = new Enc28j60Nic({ hal, clock: options.clock, mac: options.mac, name, options: options.driverOptions });
  return { hal, emulator, nic };
}
