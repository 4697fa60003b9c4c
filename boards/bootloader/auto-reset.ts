/**
 * An Uno as its USB-serial port sees it: opening the port asserts DTR, the 100 nF capacitor on
 * the board pulses RESET, optiboot listens for a second, then the sketch runs. Bytes from the
 * host go to whichever of the two is running, and both talk back on the same line.
 *
 * Any simulated ATmega328P can sit behind this: it only needs to expose the `SimulatedMcu` below
 * (boards/bootloader/avr-mcu.ts is a minimal avr8js one).
 */
import type { Clock } from '../../src/time/clock.js';
import { OptibootEmulator } from './optiboot.js';

/** What the bootloader needs from a simulated MCU. */
export interface SimulatedMcu {
  /** Program memory (avr8js `cpu.progMem`). */
  readonly flash: Uint16Array;
  /** Hold the CPU in reset: the (emulated) bootloader owns the chip. */
  halt(): void;
  /** Reset the CPU and run the sketch from address 0. */
  run(): void;
  /** Host → USART RX. */
  receive(bytes: Uint8Array): void;
  /** USART TX → host; returns an unsubscribe function. */
  onTransmit(listener: (bytes: Uint8Array) => void): () => void;
}

export interface AutoResetOptions {
  readonly clock: Clock;
  /** Bootloader timeout (optiboot: 1 s of silence). */
  readonly bootloaderTimeoutMs?: number;
}

export type BoardState = 'off' | 'bootloader' | 'sketch';

export class AutoResetBoard {
  private readonly bootloader: OptibootEmulator;
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private readonly stateListeners = new Set<(state: BoardState) => void>();
  private current: BoardState = 'off';
  private readonly unsubscribeMcu: () => void;

  constructor(
    readonly mcu: SimulatedMcu,
    options: AutoResetOptions,
  ) {
    this.bootloader = new OptibootEmulator({
      flash: mcu.flash,
      clock: options.clock,
      timeoutMs: options.bootloaderTimeoutMs,
      transmit: (bytes) => this.emit(bytes),
      startApplication: () => this.startSketch(),
    });
    this.unsubscribeMcu = mcu.onTransmit((bytes) => {
      if (this.current === 'sketch') this.emit(bytes);
    });
  }

  get state(): BoardState {
    return this.current;
  }

  /** Power on without a host: a power-on reset skips optiboot straight to the sketch. */
  powerOn(): void {
    this.startSketch();
  }

  /** The host opened the port (DTR asserted): external reset into the bootloader. */
  open(): void {
    this.mcu.halt();
    this.bootloader.reset();
    this.setState('bootloader');
  }

  /** Host → board. */
  write(bytes: Uint8Array): void {
    if (this.current === 'bootloader') this.bootloader.receive(bytes);
    else if (this.current === 'sketch') this.mcu.receive(bytes);
  }

  /** Board → host; returns an unsubscribe function. */
  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStateChange(listener: (state: BoardState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  powerOff(): void {
    this.bootloader.stop();
    this.mcu.halt();
    this.setState('off');
  }

  close(): void {
    this.powerOff();
    this.unsubscribeMcu();
  }

  private startSketch(): void {
    this.mcu.run();
    this.setState('sketch');
  }

  private setState(state: BoardState): void {
    this.current = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private emit(bytes: Uint8Array): void {
    for (const listener of this.listeners) listener(bytes);
  }
}
