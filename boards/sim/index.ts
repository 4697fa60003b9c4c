/**
 * A simulated bridge board: the committed sketch hex in avr8js, an SPI chip on its bus (the
 * caller's: tools/boards.ts puts the ENC28J60 emulator there), a USB-serial link model in front,
 * reachable in-process as a serialport binding or from outside through a pseudo-terminal.
 *
 *   const board = await createSimulatedBoard({ board: 'uno', clock: new VirtualClock(), chip });
 *   const hal = await board.openHal();            // BridgeHal over SerialPortStream + the binding
 *   …
 *   await board.stop();
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { RealClock } from '../../src/time/real-clock.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BridgeHal, type BridgeHalOptions } from '../../hal/bridge/bridge-hal.js';
import { BRIDGE_DEFAULTS, idleFillFor } from '../../hal/bridge/options.js';
import { misread, ratesMatch } from '../bootloader/uart-line.js';
import { AutoResetBoard } from '../bootloader/auto-reset.js';
import { PtyBridge, type SerialTarget } from '../bootloader/pty.js';
import { AvrBridgeMcu, type PinLevel } from './avr-board.js';
import { SimulatedBinding } from './binding.js';
import type { SpiChip } from './chip.js';
import { LINK_MODELS, SerialLink, type Direction, type LinkFaults, type LinkModel, type LinkModelName, type LinkTarget } from './serial-link.js';

export { AvrBridgeMcu, type PinLevel } from './avr-board.js';
export { SimulatedBinding } from './binding.js';
export type { SpiChip } from './chip.js';
export { ModelBoard } from './model-board.js';
export { LINK_MODELS, SerialLink, type LinkModel, type LinkModelName } from './serial-link.js';
export { driveVirtualClock } from './virtual-time.js';

/** Boards the simulator can run (avr8js models the ATmega328P; the Mega 2560 is not emulated). */
export type SimulatedBoardName = 'uno' | 'nano';

export interface SimulatedBoardOptions {
  readonly board?: SimulatedBoardName;
  /** A VirtualClock runs as fast as possible (deterministic); any other clock runs in real time. */
  readonly clock?: Clock;
  /** Override: pace against the wall clock even with a VirtualClock (false needs a VirtualClock). */
  readonly realtime?: boolean;
  /**
   * The chip on SPI, or a function that makes it on the clock it must run on: the AVR's own time
   * (BoardTimeClock) when the AVR runs ahead of a VirtualClock.
   */
  readonly chip: SpiChip | ((clock: Clock) => SpiChip);
  /** USB-serial model: '16u2' (Uno default), 'ftdi' (Nano default), 'ftdi-1ms', 'ideal', or custom. */
  readonly linkModel?: LinkModelName | LinkModel;
  /** Port path in the binding (default /dev/ttySPINET0). */
  readonly path?: string;
  /** Opening the port resets the board (DTR auto-reset), default true. */
  readonly resetOnOpen?: boolean;
  /** Run the optiboot emulator after each reset-on-open (1 s, like a real Uno). Default false. */
  readonly bootloader?: boolean;
  /** Sketch hex to run (default: the committed boards/bridge/<board>.hex). */
  readonly hexPath?: string;
}

export interface SimulatedBoard {
  readonly name: SimulatedBoardName;
  readonly path: string;
  /** serialport binding serving `path`: `new SerialPortStream({ binding, path, baudRate })`. */
  readonly binding: SimulatedBinding;
  readonly clock: Clock;
  readonly mcu: AvrBridgeMcu;
  /** The chip on SPI. */
  readonly chip: SpiChip;
  /** Same object as `chip` when it is the ENC28J60 emulator. */
  readonly emulator: SpiChip;
  readonly link: SerialLink;
  /** Open a BridgeHal on this board (clock, binding and the link model's idle fill filled in). */
  openHal(options?: Partial<BridgeHalOptions>): Promise<BridgeHal>;
  /** Pin levels and inputs, for GPIO tests. */
  readonly pins: {
    level(pin: number): PinLevel;
    setInput(pin: number, high: boolean): void;
    setAnalog(channel: number, volts: number): void;
    pwmDuty(pin: number): number | undefined;
    onChange(listener: (pin: number, level: PinLevel) => void): () => void;
  };
  /** Serial-link faults. */
  readonly faults: {
    corruptNext(direction: Direction, count?: number, afterBytes?: number): void;
    dropNext(direction: Direction, count?: number): void;
    /** The host takes nothing from the port for `ms` (the USB-serial chip's buffers fill). */
    stallHost(ms: number): void;
    setRandom(direction: Direction, faults: LinkFaults | undefined): void;
    /** Press the reset button. */
    resetBoard(): void;
    /** Unplug the USB cable (the board loses power with `powerOff`). */
    vanishPort(options?: { powerOff?: boolean }): void;
    /** Plug it back in (a powered-off board boots). */
    reappearPort(): void;
  };
  /** Serve the board on a pseudo-terminal at `path` (needs socat). */
  servePty(path: string): Promise<PtyBridge>;
  stop(): Promise<void>;
}

const BOARD_PINS: Record<SimulatedBoardName, { cs: number; int: number; reset: number; link: LinkModelName }> = {
  uno: { cs: 10, int: 2, reset: 9, link: '16u2' },
  nano: { cs: 10, int: 2, reset: 9, link: 'ftdi' },
};

export function committedHexPath(board: string): string {
  return fileURLToPath(new URL(`../bridge/${board}.hex`, import.meta.url));
}

/**
 * A clock that reads the simulated AVR's time while the AVR runs ahead of the virtual clock in a
 * slice, and schedules on the virtual clock relative to it. The virtual clock never passes a
 * pending deadline, so a timer set from the AVR's time still fires at its own moment.
 */
export class BoardTimeClock implements Clock {
  board: () => number | undefined = () => undefined;
  /** Told each deadline set from the board's time (the AVR stops its slice there). */
  onSchedule: (atMs: number) => void = () => {};

  constructor(private readonly clock: Clock) {}

  now(): number {
    const base = this.clock.now();
    const board = this.board();
    return board !== undefined && board > base ? board : base;
  }

  epochMs(): number {
    return this.clock.epochMs() + (this.now() - this.clock.now());
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    const now = this.now();
    const ahead = now - this.clock.now();
    if (ahead > 0) this.onSchedule(now + Math.max(0, delayMs));
    return this.clock.schedule(Math.max(0, delayMs) + ahead, callback);
  }
}

export async function createSimulatedBoard(options: SimulatedBoardOptions): Promise<SimulatedBoard> {
  const name = options.board ?? 'uno';
  const layout = BOARD_PINS[name];
  if (!layout) throw new Error(`board ${name} cannot be simulated (avr8js models the ATmega328P: uno, nano)`);
  const clock = options.clock ?? new RealClock();
  const realtime = options.realtime ?? !(clock instanceof VirtualClock);
  if (!realtime && !(clock instanceof VirtualClock)) throw new Error('as-fast-as-possible simulation needs a VirtualClock');
  // The chip runs on the AVR's time: with a VirtualClock the AVR executes up to a slice ahead of
  // the clock, and a transmission it starts must be stamped when the AVR started it, not at the
  // slice's start (up to 0.5 ms early).
  const chipClock = realtime ? clock : new BoardTimeClock(clock);
  const chip = typeof options.chip === 'function' ? options.chip(chipClock) : options.chip;
  const hex = readFileSync(options.hexPath ?? committedHexPath(name), 'utf8');
  const mcu = new AvrBridgeMcu({ hex, chip, clock, realtime, csPin: layout.cs, intPin: layout.int, resetPin: layout.reset });
  if (chipClock instanceof BoardTimeClock) {
    chipClock.board = () => mcu.timeMs;
    chipClock.onSchedule = (atMs) => mcu.endSliceBy(atMs);
  }
  const autoReset = options.bootloader ? new AutoResetBoard(mcu, { clock }) : undefined;
  // The host's port rate against the sketch's UART rate: when they differ (a board that reset to
  // its compiled-in rate after SET_BAUD), each side reads the other's bytes as garbage.
  let hostBaud: number = BRIDGE_DEFAULTS.baudRate;
  const line = (bytes: Uint8Array, from: number, to: number | undefined) => (to === undefined || ratesMatch(from, to) ? bytes : misread(bytes, from, to));
  const target: LinkTarget = autoReset
    ? { open: () => autoReset.open(), write: (b) => autoReset.write(b), onData: (l) => autoReset.onData(l), powerOff: () => autoReset.powerOff() }
    : {
        open: () => mcu.run(),
        write: (b) => mcu.receive(b, hostBaud),
        onData: (l) => mcu.onTransmit((b) => l(line(b, mcu.baudRate ?? hostBaud, hostBaud))),
        powerOff: () => mcu.powerOff(),
      };
  const linkModel = typeof options.linkModel === 'object' ? options.linkModel : LINK_MODELS[options.linkModel ?? layout.link];
  const link = new SerialLink(clock, target, linkModel);
  if (!realtime) {
    // When a frame's end reaches the host (a delimiter after frame bytes; more zeros are idle
    // fill), the host is due to answer: give it short slices.
    let last = 0;
    link.onHostData((bytes) => {
      let frameEnd = false;
      for (const b of bytes) {
        if (b === 0 && last !== 0) frameEnd = true;
        last = b;
      }
      if (frameEnd) mcu.yieldToHost();
    });
  }
  const path = options.path ?? '/dev/ttySPINET0';
  const resetOnOpen = options.resetOnOpen ?? true;
  const binding = new SimulatedBinding();
  binding.register(path, link, { resetOnOpen, onBaudRate: (baud) => (hostBaud = baud) });
  // Plugged in = powered: the sketch runs before anyone opens the port.
  if (autoReset) autoReset.powerOn();
  else mcu.run();
  const ptys: PtyBridge[] = [];
  let poweredOff = false;

  return {
    name,
    path,
    binding,
    clock,
    mcu,
    chip,
    emulator: chip,
    link,
    openHal: (halOptions = {}) =>
      BridgeHal.open({ path, binding, clock, ...(resetOnOpen ? {} : { bootWaitMs: 0 }), ...halOptions, idleFill: halOptions.idleFill ?? idleFillFor(linkModel.name) }),
    pins: {
      level: (pin) => mcu.pinLevel(pin),
      setInput: (pin, high) => mcu.setInput(pin, high),
      setAnalog: (channel, volts) => mcu.setAnalog(channel, volts),
      pwmDuty: (pin) => mcu.pwmDuty(pin),
      onChange: (listener) => mcu.onPinChange(listener),
    },
    faults: {
      corruptNext: (direction, count, afterBytes) => link.corruptNext(direction, count, afterBytes),
      dropNext: (direction, count) => link.dropNext(direction, count),
      stallHost: (ms) => link.stallHost(ms),
      setRandom: (direction, faults) => link.setFaults(direction, faults),
      resetBoard: () => mcu.run(),
      vanishPort: (vanishOptions = {}) => {
        poweredOff = vanishOptions.powerOff ?? false;
        link.vanish(vanishOptions);
      },
      reappearPort: () => {
        if (poweredOff) mcu.run();
        poweredOff = false;
        link.reappear();
      },
    },
    servePty: async (ptyPath) => {
      const serial: SerialTarget = {
        open: () => link.hostOpen(resetOnOpen),
        write: (bytes) => link.hostWrite(bytes),
        onData: (listener) => link.onHostData(listener),
      };
      const pty = await PtyBridge.start(serial, { path: ptyPath });
      ptys.push(pty);
      return pty;
    },
    stop: async () => {
      for (const pty of ptys) await pty.close();
      autoReset?.close();
      mcu.stop();
      link.close();
    },
  };
}
