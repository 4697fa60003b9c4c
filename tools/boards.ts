/**
 * `--board`: what sits between the stack and the cable.
 *   virtual  a NIC straight on the LAN (no chip)
 *   mock     the ENC28J60 driver → mock HAL → emulated ENC28J60 (in-process)
 *   sim      the ENC28J60 driver → bridge HAL → the real bridge sketch in avr8js → emulated ENC28J60
 *   serial   the ENC28J60 driver → bridge HAL → a real board on --port
 * Every board is composed here, above the adapters (hal/, boards/) and the core (src/) they plug
 * into: the CLI, the tests and the benchmarks take their boards from this file.
 */
import type { Clock } from '../src/time/clock.js';
import type { Nic } from '../src/link/nic.js';
import type { MacAddress } from '../src/wire/address.js';
import { Enc28j60Nic } from '../src/drivers/enc28j60/driver.js';
import type { Enc28j60Options } from '../src/drivers/enc28j60/options.js';
import { VirtualNic, type VirtualLan } from '../hal/lan/switch.js';
import { Enc28j60Emulator } from '../hal/enc28j60/emulator.js';
import { MockHal, type LinkModel } from '../hal/mock/mock-hal.js';
import type { SimulatedBoard, SimulatedBoardOptions } from '../boards/sim/index.js';
import { UsageError } from './options.js';

/** `--board` and what goes with it, checked: a real board has its port and speed. */
export type BoardChoice = { readonly kind: 'virtual' | 'mock' | 'sim' } | { readonly kind: 'serial'; readonly port: string; readonly baudRate: number };

/** Check `--board`, `--chip`, `--port`, `--baud` (usage errors) before anything is opened. */
export function checkBoardOptions(options: { board?: string | undefined; chip?: string | undefined; port?: string | undefined; baud?: string | undefined }): BoardChoice {
  const kind = options.board ?? 'virtual';
  if (kind !== 'virtual' && kind !== 'mock' && kind !== 'sim' && kind !== 'serial') throw new UsageError(`--board must be virtual, mock, sim or serial, not '${kind}'`);
  const chip = options.chip ?? 'enc28j60';
  if (kind !== 'virtual' && chip !== 'enc28j60') throw new UsageError(`--chip ${chip} is not supported (supported: enc28j60)`);
  if (kind !== 'serial') return { kind };
  if (!options.port) throw new UsageError('--board serial needs --port PATH (e.g. /dev/ttyACM0)');
  const baudRate = options.baud ? Number(options.baud) : 1_000_000;
  if (!Number.isInteger(baudRate) || baudRate <= 0) throw new UsageError(`--baud ${options.baud}: not a baud rate`);
  return { kind, port: options.port, baudRate };
}

export interface BoardOptions {
  readonly clock: Clock;
  readonly lan: VirtualLan;
  readonly mac: MacAddress;
  readonly progress: (message: string) => void;
}

export interface OpenBoard {
  readonly nic: Nic;
  readonly description: string;
  close(): Promise<void>;
}

export async function openBoard(choice: BoardChoice, options: BoardOptions): Promise<OpenBoard> {
  switch (choice.kind) {
    case 'virtual': {
      const nic = new VirtualNic(options.lan, options.mac, 'virtual0');
      return { nic, description: 'virtual NIC (no chip)', close: () => nic.stop() };
    }
    case 'mock': {
      const board = createMockEnc28j60Board({
        clock: options.clock,
        lan: options.lan,
        mac: options.mac,
        name: 'enc28j60',
        onStrictViolation: (message) => options.progress(`enc28j60 emulator: driver misuse: ${message}`),
      });
      return {
        nic: board.nic,
        description: 'ENC28J60 driver → mock HAL → emulated ENC28J60',
        close: async () => {
          await board.nic.stop();
          board.emulator.unplug();
          await board.hal.close();
        },
      };
    }
    case 'sim': {
      options.progress('board: starting the simulated Uno (bridge sketch in avr8js, emulated ENC28J60)…');
      const sim = await createSimulatedEnc28j60Board({ board: 'uno', clock: options.clock, lan: options.lan, mac: options.mac });
      const hal = await sim.openHal();
      const nic = new Enc28j60Nic({ hal, clock: options.clock, mac: options.mac, name: 'enc28j60' });
      return {
        nic,
        description: `simulated Uno (avr8js) over ${sim.path} → ENC28J60 emulator`,
        close: async () => {
          await nic.stop();
          await hal.close();
          await sim.stop();
        },
      };
    }
    case 'serial': {
      const { port, baudRate } = choice;
      const { openBridgeHal } = await import('../hal/bridge/bridge-hal.js');
      options.progress(`board: opening ${port} at ${baudRate} baud…`);
      // Idle fill from the board the sketch names (its USB-serial chip's flush rule).
      const hal = await openBridgeHal({ path: port, baudRate, clock: options.clock, idleFill: 'auto' }).catch((error: unknown) => {
        throw explainOpenError(error, port, baudRate);
      });
      const nic = new Enc28j60Nic({ hal, clock: options.clock, mac: options.mac, name: 'enc28j60' });
      return {
        nic,
        description: `${hal.name} → ENC28J60`,
        close: async () => {
          await nic.stop();
          await hal.close();
        },
      };
    }
  }
}

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
 * `--board mock`: an emulated ENC28J60 on the virtual LAN behind the mock HAL, with the driver on
 * top. Call `nic.start()` to bring it up.
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

/**
 * `--board sim`: the simulated board (boards/sim/) with an emulated ENC28J60 on its SPI bus,
 * plugged into `lan`. The bridge HAL and the driver are the caller's (`board.openHal()`).
 */
export async function createSimulatedEnc28j60Board(options: Omit<SimulatedBoardOptions, 'chip'> & { readonly lan?: VirtualLan; readonly mac?: MacAddress }): Promise<SimulatedBoard> {
  // Loaded on demand: avr8js and serialport only for the boards that need them.
  const { createSimulatedBoard } = await import('../boards/sim/index.js');
  const { lan, mac, ...board } = options;
  return createSimulatedBoard({
    ...board,
    chip: (clock) => {
      // Frames reach the chip at 10 Mbit/s, as through a switch: the board's timing is the point here.
      const emulator = new Enc28j60Emulator({ clock, mac, rxWireTime: true });
      if (lan) emulator.plugInto(lan);
      return emulator;
    },
  });
}

/** The three ways opening a real board fails, said so that the user knows what to do next. */
export function explainOpenError(error: unknown, port: string, baudRate: number): Error {
  const e = error as Error & { code?: string };
  const text = `${e.code ?? ''} ${e.message}`;
  const wrap = (code: string, message: string) => Object.assign(new Error(message), { code, cause: error });
  if (/ENOENT|No such file/i.test(text)) return wrap('ENOENT', `no such port ${port}: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB*)`);
  if (/EACCES|Permission denied/i.test(text)) return wrap('EACCES', `permission denied on ${port}: add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again`);
  if (/ETIMEDOUT|timed? ?out|no answer|HELLO/i.test(text)) {
    return wrap('ETIMEDOUT', `no answer from the bridge sketch on ${port} at ${baudRate} baud: is it flashed (spinet flash --port ${port}) and is --baud right? (${e.message})`);
  }
  return e;
}
