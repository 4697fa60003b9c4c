/**
 * `--board`: what sits between the stack and the cable; `--chip`: the Ethernet chip on it.
 *   virtual  a NIC straight on the LAN (no chip)
 *   mock     the chip's driver → mock HAL → emulated chip (in-process): ENC28J60 or W5500
 *   sim      the chip's driver → bridge HAL → the real bridge sketch in avr8js → emulated ENC28J60 or W5500
 *   serial   the chip's driver → bridge HAL → a real board on --port (the chip found by probing: --chip auto)
 * Every board is composed here, above the adapters (hal/, boards/) and the core (src/) they plug
 * into: the CLI, the tests and the benchmarks take their boards from this file.
 */
import type { Clock } from '../src/time/clock.js';
import type { Nic } from '../src/link/nic.js';
import type { Gpio } from '../src/drivers/hal.js';
import type { MacAddress } from '../src/wire/address.js';
import { Enc28j60Nic } from '../src/drivers/enc28j60/driver.js';
import type { Enc28j60Options } from '../src/drivers/enc28j60/options.js';
import { W5500Nic } from '../src/drivers/w5500/driver.js';
import type { W5500Options } from '../src/drivers/w5500/options.js';
import { VirtualNic, type VirtualLan } from '../hal/lan/switch.js';
import { Enc28j60Emulator, type Enc28j60EmulatorOptions } from '../hal/enc28j60/emulator.js';
import { W5500Emulator, type W5500EmulatorOptions } from '../hal/w5500/emulator.js';
import { MockHal, type InterruptSource, type LinkModel, type SpiSlave } from '../hal/mock/mock-hal.js';
import type { SimulatedBoard, SimulatedBoardOptions, SpiChip } from '../boards/sim/index.js';
import type { Hal } from '../src/drivers/hal.js';
import { probeChip } from '../src/drivers/probe.js';
import { UsageError } from './options.js';
import type { TraceHook } from '../src/stats/trace.js';
import type { ChipStatus } from '../src/drivers/status.js';
import type { BridgeLinkStatus, BridgeStats } from '../hal/bridge/bridge-hal.js';

/** The Ethernet chips spinet drives. */
export const CHIPS = ['enc28j60', 'w5500'] as const;
export type Chip = (typeof CHIPS)[number];

/** `--chip` on a board behind the bridge: a chip, or `auto` (the driver for whichever answers, src/drivers/probe.ts). */
export type ChipChoice = Chip | 'auto';

/**
 * `--board` and what goes with it, checked: a real board has its port and speed, a mock board its
 * chip. On the simulated board `chip` is also the emulated chip (`auto`: an ENC28J60, found by probing).
 */
export type BoardChoice =
  | { readonly kind: 'virtual' }
  | { readonly kind: 'mock'; readonly chip: Chip }
  | { readonly kind: 'sim'; readonly chip: ChipChoice }
  | { readonly kind: 'serial'; readonly port: string; readonly baudRate: number; readonly chip: ChipChoice };

/** Check `--board`, `--chip`, `--port`, `--baud` (usage errors) before anything is opened. */
export function checkBoardOptions(options: { board?: string | undefined; chip?: string | undefined; port?: string | undefined; baud?: string | undefined }): BoardChoice {
  // --port means a real board: it implies --board serial, and contradicts any other board.
  const kind = options.board ?? (options.port !== undefined ? 'serial' : 'virtual');
  if (options.port !== undefined && kind !== 'serial') throw new UsageError(`--port is a real board's serial port, and --board ${kind} has none: drop --port (or --board ${kind})`);
  if (kind !== 'virtual' && kind !== 'mock' && kind !== 'sim' && kind !== 'serial') throw new UsageError(`--board must be virtual, mock, sim or serial, not '${kind}'`);
  // A real board's chip is found by probing unless named; the emulated boards carry an ENC28J60 unless told.
  const chip = options.chip ?? (kind === 'serial' ? 'auto' : 'enc28j60');
  const bridged = kind === 'sim' || kind === 'serial';
  if (!(CHIPS as readonly string[]).includes(chip) && !(bridged && chip === 'auto')) {
    const choices = bridged ? `${CHIPS.join(', ')} or auto` : CHIPS.join(' or ');
    throw new UsageError(`--chip must be ${choices}, not '${chip}'${chip === 'auto' ? ' (auto probes a board behind the bridge: --board sim or serial)' : ''}`);
  }
  if (kind === 'mock') return { kind, chip: chip as Chip };
  if (kind === 'sim') return { kind, chip: chip as ChipChoice };
  if (kind === 'virtual') return { kind };
  if (!options.port) throw new UsageError('--board serial needs --port PATH (e.g. /dev/ttyACM0)');
  const baudRate = options.baud ? Number(options.baud) : 1_000_000;
  if (!Number.isInteger(baudRate) || baudRate <= 0) throw new UsageError(`--baud ${options.baud}: not a baud rate`);
  return { kind, port: options.port, baudRate, chip: chip as ChipChoice };
}

export interface BoardOptions {
  readonly clock: Clock;
  readonly lan: VirtualLan;
  readonly mac: MacAddress;
  readonly progress: (message: string) => void;
  /** The stack's trace hook, handed to the driver so it reports too. */
  readonly trace?: TraceHook;
}

/** The serial link to a board (sim, serial): its counters and state, read by the console. */
export interface BoardLink {
  readonly stats: BridgeStats;
  linkStatus(): BridgeLinkStatus;
}

export interface OpenBoard {
  readonly nic: Nic;
  readonly description: string;
  /** The board's spare pins (sim and serial: the bridge sketch's GPIO commands), for johnny-five. */
  readonly gpio?: Gpio;
  /** The chip's state as its driver knows it (mock, sim, serial). */
  readonly chip?: { status(): ChipStatus };
  /** The serial bridge (sim, serial). */
  readonly link?: BoardLink;
  close(): Promise<void>;
}

/** Bring up the board `choice` names, its cable in `options.lan` (a serial board's is a real cable). */
export async function connectBoard(choice: BoardChoice, options: BoardOptions): Promise<OpenBoard> {
  switch (choice.kind) {
    case 'virtual': {
      const nic = new VirtualNic(options.lan, options.mac, 'virtual0');
      return { nic, description: 'virtual NIC (no chip)', close: () => nic.stop() };
    }
    case 'mock':
      return openMockBoard(choice.chip, options);
    case 'sim': {
      const emulated: Chip = choice.chip === 'auto' ? 'enc28j60' : choice.chip;
      const label = CHIP_NAMES[emulated];
      options.progress(`board: starting the simulated Uno (bridge sketch in avr8js, emulated ${label})…`);
      const sim = await createSimulatedEthernetBoard({
        board: 'uno',
        chip: emulated,
        clock: options.clock,
        lan: options.lan,
        mac: options.mac,
        onStrictViolation: (message) => options.progress(`${emulated} emulator: misuse: ${message}`),
      });
      const hal = await sim.openHal();
      const driver = await bridgeDriver(hal, choice.chip, options).catch(async (error: unknown) => {
        await hal.close();
        await sim.stop();
        throw error;
      });
      return {
        nic: driver.nic,
        chip: driver.nic,
        link: hal,
        description: `simulated Uno (avr8js) over ${sim.path} → ${label} emulator`,
        gpio: hal.gpio,
        close: async () => {
          await driver.nic.stop();
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
      // An FTDI chip's latency timer goes to 1 ms where Linux lets the host (README, "FTDI latency timer").
      const hal = await openBridgeHal({ path: port, baudRate, clock: options.clock, idleFill: 'auto', onNotice: (message) => options.progress(message) }).catch((error: unknown) => {
        throw explainOpenError(error, port, baudRate);
      });
      const driver = await bridgeDriver(hal, choice.chip, options).catch(async (error: unknown) => {
        await hal.close();
        throw error;
      });
      return {
        nic: driver.nic,
        chip: driver.nic,
        link: hal,
        description: `${hal.name} → ${CHIP_NAMES[driver.chip]}`,
        gpio: hal.gpio,
        close: async () => {
          await driver.nic.stop();
          await hal.close();
        },
      };
    }
  }
}

const CHIP_NAMES: Record<Chip, string> = { enc28j60: 'ENC28J60', w5500: 'W5500' };

/**
 * The driver for the chip behind a bridge board: the one named, or with `auto` the one that
 * answers the probe (src/drivers/probe.ts), said in a progress line; a probe that finds neither
 * throws its one-line ENODEV error.
 */
export async function bridgeDriver(hal: Hal, chip: ChipChoice, options: Pick<BoardOptions, 'clock' | 'mac' | 'progress' | 'trace'>): Promise<{ chip: Chip; nic: Enc28j60Nic | W5500Nic }> {
  let found: Chip;
  if (chip === 'auto') {
    const probed = await probeChip(hal);
    found = probed.chip;
    options.progress(`chip: found a${found === 'enc28j60' ? 'n' : ''} ${CHIP_NAMES[found]} (${probed.detail})`);
  } else {
    found = chip;
  }
  const config = { hal, clock: options.clock, mac: options.mac, name: found, ...(options.trace ? { trace: options.trace } : {}) };
  return { chip: found, nic: found === 'w5500' ? new W5500Nic(config) : new Enc28j60Nic(config) };
}

/** `--board mock`: the chip's driver over the mock HAL, the emulated chip strict (a driver misuse is printed). */
async function openMockBoard(chip: Chip, options: BoardOptions): Promise<OpenBoard> {
  const common = {
    clock: options.clock,
    lan: options.lan,
    mac: options.mac,
    name: chip,
    onStrictViolation: (message: string) => options.progress(`${chip} emulator: driver misuse: ${message}`),
    ...(options.trace ? { trace: options.trace } : {}),
  };
  const board = chip === 'w5500' ? createMockW5500Board(common) : createMockEnc28j60Board(common);
  const name = chip === 'w5500' ? 'W5500' : 'ENC28J60';
  return {
    nic: board.nic,
    chip: board.nic,
    description: `${name} driver → mock HAL → emulated ${name}`,
    close: async () => {
      await board.nic.stop();
      board.emulator.unplug();
      await board.hal.close();
    },
  };
}

/** What a mock board needs from an emulated chip: its SPI side, its pins, and its cable. */
export interface EmulatedChip extends SpiSlave, InterruptSource {
  /** The reset line was pulsed (released now). */
  hardReset(): void;
  plugInto(lan: VirtualLan): void;
  unplug(): void;
}

/** A mock board of any chip, as the CLI, the tests and the benchmarks set one up. */
export interface MockBoardOptions {
  clock: Clock;
  lan: VirtualLan;
  mac: MacAddress;
  /** Simulate the serial bridge's speed and latency; omitted = instant SPI. */
  linkModel?: LinkModel;
  /** Largest arm() program the mock board takes (MockHalOptions.maxProgramBytes): default 64, 0 = none. */
  maxProgramBytes?: number;
  /** The mock board honours SpiTransaction.delayUs (MockHalOptions.transactionDelays): default true. */
  transactionDelays?: boolean;
  /** The chip's interrupt pin reaches the board (default true); false: a module whose INT is not wired. */
  interruptWired?: boolean;
  /** Emulator strict mode (driver misuse reported); default true. */
  strict?: boolean;
  onStrictViolation?: (message: string) => void;
  name?: string;
  /** The stack's trace hook, so the driver reports too (src/stats/trace.ts). */
  trace?: TraceHook;
}

export interface MockBoard<Chip extends EmulatedChip, Driver> {
  hal: MockHal;
  emulator: Chip;
  nic: Driver;
}

/** `emulator` on the virtual LAN behind the mock HAL, with the driver `driver` makes on top. */
function createMockBoard<Chip extends EmulatedChip, Driver>(options: MockBoardOptions, name: string, emulator: Chip, driver: (hal: MockHal) => Driver): MockBoard<Chip, Driver> {
  emulator.plugInto(options.lan);
  const hal = new MockHal({
    clock: options.clock,
    slave: emulator,
    interrupt: options.interruptWired === false ? undefined : emulator,
    reset: emulator,
    linkModel: options.linkModel,
    maxProgramBytes: options.maxProgramBytes,
    transactionDelays: options.transactionDelays,
    // The chip's events fall between a batch's bytes, as on a board (the bridge's concurrency).
    bytesOverTime: true,
    name: `mock:${name}`,
  });
  return { hal, emulator, nic: driver(hal) };
}

export interface MockEnc28j60BoardOptions extends MockBoardOptions {
  /** The emulator's surroundings: the link partner's duplex, wire timing, errata rates. */
  chip?: Pick<Enc28j60EmulatorOptions, 'linkPartner' | 'rxWireTime' | 'random' | 'pktifMissRate'>;
  driverOptions?: Partial<Enc28j60Options>;
}

export type MockEnc28j60Board = MockBoard<Enc28j60Emulator, Enc28j60Nic>;

/**
 * `--board mock --chip enc28j60`: an emulated ENC28J60 on the virtual LAN behind the mock HAL,
 * with the driver on top. Call `nic.start()` to bring it up.
 */
export function createMockEnc28j60Board(options: MockEnc28j60BoardOptions): MockEnc28j60Board {
  const name = options.name ?? 'enc28j60';
  const emulator = new Enc28j60Emulator({ clock: options.clock, strict: options.strict ?? true, onStrictViolation: options.onStrictViolation, mac: options.mac, label: name, ...options.chip });
  return createMockBoard(options, name, emulator, (hal) => new Enc28j60Nic({ hal, clock: options.clock, mac: options.mac, name, options: options.driverOptions, ...(options.trace ? { trace: options.trace } : {}) }));
}

export interface MockW5500BoardOptions extends MockBoardOptions {
  /** The emulator's timing (SPI clock, wire time, auto-negotiation). */
  chip?: Pick<W5500EmulatorOptions, 'spiClockHz' | 'rxWireTime' | 'autonegotiationMs'>;
  driverOptions?: Partial<W5500Options>;
}

export type MockW5500Board = MockBoard<W5500Emulator, W5500Nic>;

/**
 * `--board mock --chip w5500`: an emulated W5500 on the virtual LAN behind the mock HAL, with the
 * driver on top. Call `nic.start()` to bring it up.
 */
export function createMockW5500Board(options: MockW5500BoardOptions): MockW5500Board {
  const name = options.name ?? 'w5500';
  const emulator = new W5500Emulator({ clock: options.clock, strict: options.strict ?? true, onStrictViolation: options.onStrictViolation, label: name, ...options.chip });
  const driverOptions = { ...(options.interruptWired === false ? { interruptLine: false } : {}), ...options.driverOptions };
  return createMockBoard(options, name, emulator, (hal) => new W5500Nic({ hal, clock: options.clock, mac: options.mac, name, options: driverOptions, ...(options.trace ? { trace: options.trace } : {}) }));
}

/**
 * `--board sim`: the simulated board (boards/sim/) with an emulated chip on its SPI bus (`chip`,
 * default the ENC28J60; INT on D2 as the shields wire it, RESET on D9), plugged into `lan`. The
 * bridge HAL and the driver are the caller's (`board.openHal()`).
 */
export interface SimulatedEthernetBoardOptions extends Omit<SimulatedBoardOptions, 'chip'> {
  /** The emulated chip (default the ENC28J60). */
  readonly chip?: Chip;
  readonly lan?: VirtualLan;
  readonly mac?: MacAddress;
  /** The chip is strict (always): every misuse of it by the sketch or driver is passed here. */
  readonly onStrictViolation?: (message: string) => void;
  /** The ENC28J60 emulator's surroundings (link partner, errata rates). */
  readonly chipOptions?: Pick<Enc28j60EmulatorOptions, 'linkPartner' | 'random' | 'pktifMissRate'>;
  /** What lies between the emulated chip and the board's pins (a test's faulty wiring); default the chip itself. */
  readonly wiring?: (chip: SpiChip) => SpiChip;
}

export async function createSimulatedEthernetBoard(options: SimulatedEthernetBoardOptions): Promise<SimulatedBoard> {
  // Loaded on demand: avr8js and serialport only for the boards that need them.
  const { createSimulatedBoard } = await import('../boards/sim/index.js');
  const { lan, mac, chip, onStrictViolation, chipOptions, wiring = (c: SpiChip) => c, ...board } = options;
  return createSimulatedBoard({ ...board, chip: (clock) => wiring(emulatedBoardChip(clock, { lan, mac, chip, onStrictViolation, chipOptions })) });
}

/** The emulated chip on a simulated board's SPI bus, plugged into `lan`. */
function emulatedBoardChip(clock: Clock, options: Pick<SimulatedEthernetBoardOptions, 'lan' | 'mac' | 'chip' | 'onStrictViolation' | 'chipOptions'>): Enc28j60Emulator | W5500Emulator {
  const { lan, mac, chip, onStrictViolation, chipOptions } = options;
  // Frames reach the chip at wire speed, as through a switch: the board's timing is the point
  // here. Strict: this is the path with real concurrency between the board and the chip.
  if (chip === 'w5500') {
    // The chip runs on the AVR's time, which SPI bytes already advance: no time of its own per byte.
    const emulator = new W5500Emulator({ clock, rxWireTime: true, spiClockHz: Infinity, strict: true, onStrictViolation });
    if (lan) emulator.plugInto(lan);
    return emulator;
  }
  const emulator = new Enc28j60Emulator({ clock, mac, rxWireTime: true, strict: true, onStrictViolation, ...chipOptions });
  if (lan) emulator.plugInto(lan);
  return emulator;
}

/** A board that speaks the bridge protocol on a pseudo-terminal. */
export interface PtyBoard {
  servePty(path: string): Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * `spinet sim --model`: the bridge sketch's TypeScript model (boards/sim/model-board.ts) in place
 * of the AVR, with the emulated chip on its SPI bus, at 1 Mbaud's byte rate host → board and for
 * program answers, behind a Nano's FTDI chip with its latency timer at 1 ms (the model sends a
 * pass's frames at once, which the 16U2 model's 128-byte ring would not take). No AVR timing:
 * what it measures is the host, with a board that keeps up whatever the machine's load.
 */
export async function createModelEthernetBoard(options: Omit<SimulatedEthernetBoardOptions, 'board' | 'clock'> & { readonly clock: Clock }): Promise<PtyBoard> {
  const [{ ModelBoard }, { LINK_MODELS, SerialLink }, { PtyBridge }] = await Promise.all([
    import('../boards/sim/model-board.js'),
    import('../boards/sim/serial-link.js'),
    import('../boards/bootloader/pty.js'),
  ]);
  const { clock } = options;
  // The model takes `consumeBytesPerMs × 0.5` bytes a pass, a pass per timer tick; real timers
  // tick no faster than 1 ms: 100 bytes a pass are 1 Mbaud's 100 bytes a millisecond.
  const board = new ModelBoard({ clock, chip: emulatedBoardChip(clock, options), consumeBytesPerMs: 200 });
  const link = new SerialLink(clock, board, LINK_MODELS['ftdi-1ms']);
  board.open(); // powered before the port opens
  const ptys: { close(): Promise<void> }[] = [];
  return {
    servePty: async (path) => {
      const pty = await PtyBridge.start({ open: () => link.hostOpen(true), write: (bytes) => link.hostWrite(bytes), onData: (listener) => link.onHostData(listener) }, { path });
      ptys.push(pty);
      return pty;
    },
    stop: async () => {
      for (const pty of ptys) await pty.close();
      link.close();
      board.close();
    },
  };
}

/** `--board sim` with the ENC28J60. */
export function createSimulatedEnc28j60Board(options: Omit<SimulatedEthernetBoardOptions, 'chip'>): Promise<SimulatedBoard> {
  return createSimulatedEthernetBoard({ ...options, chip: 'enc28j60' });
}

/** The ways opening a real board fails, said so that the user knows what to do next. */
export function explainOpenError(error: unknown, port: string, baudRate: number): Error {
  const e = error as Error & { code?: string };
  const text = `${e.code ?? ''} ${e.message}`;
  const wrap = (code: string, message: string) => Object.assign(new Error(message), { code, cause: error });
  if (/Inappropriate ioctl|ENOTTY/i.test(text)) return wrap('ENOTTY', `${port} is not a serial port: give the board's port, e.g. /dev/ttyACM0 (spinet ports lists them)`);
  if (/Cannot lock port|Resource temporarily unavailable|EBUSY/i.test(text)) {
    return wrap('EBUSY', `${port} is held by another program (a serial monitor, another spinet, ModemManager?): close it and try again (fuser -v ${port} shows who)`);
  }
  if (/ENOENT|No such file/i.test(text)) return wrap('ENOENT', `no such port ${port}: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB*)`);
  if (/EACCES|Permission denied/i.test(text)) return wrap('EACCES', `permission denied on ${port}: add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again`);
  if (/ETIMEDOUT|timed? ?out|no answer|HELLO/i.test(text)) {
    return wrap('ETIMEDOUT', `no answer from the bridge sketch on ${port} at ${baudRate} baud: is it flashed (spinet flash --port ${port}) and is --baud right? (${e.message})`);
  }
  return e;
}
