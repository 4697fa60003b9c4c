/**
 * An Uno as its USB-serial port sees it: opening the port asserts DTR, the 100 nF capacitor on
 * the board pulses RESET, optiboot listens for a second, then the sketch runs. Bytes from the
 * host go to whichever of the two is running, and both talk back on the same line.
 *
 * Any simulated ATmega328P can sit behind this: it only needs to expose the `SimulatedMcu` below
 * (boards/bootloader/avr-mcu.ts is a minimal avr8js one).
 */
import type { Clock, TimerHandle } from '../../src/time/clock.js';
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
  /** The bootloader's UART rate: its answers leave at this pace (optiboot on an Uno: 115200). */
  readonly bootloaderBaud?: number;
}

export type BoardState = 'off' | 'bootloader' | 'sketch';

export class AutoResetBoard {
  private readonly bootloader: OptibootEmulator;
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private readonly stateListeners = new Set<(state: BoardState) => void>();
  private current: BoardState = 'off';
  private readonly unsubscribeMcu: () => void;
  private readonly clock: Clock;
  /** ms per byte on the bootloader's UART (start, 8 data, stop bits). */
  private readonly byteMs: number;
  /** The bootloader's answer bytes not yet through its UART. */
  private txQueue: number[] = [];
  /** When the UART finishes the byte it is sending, or has finished the last. */
  private txDoneAt = 0;
  private txTimer: TimerHandle | undefined;

  constructor(
    readonly mcu: SimulatedMcu,
    options: AutoResetOptions,
  ) {
    this.clock = options.clock;
    this.byteMs = 10_000 / (options.bootloaderBaud ?? 115_200);
    this.bootloader = new OptibootEmulator({
      flash: mcu.flash,
      clock: options.clock,
      timeoutMs: options.bootloaderTimeoutMs,
      // The emulator answers a command whole; the chip's UART sends it a byte at a time, which
      // is what the USB-serial chip's small buffer sees (a 258-byte page read at once would
      // overflow the 16U2's 128-byte ring in the simulated link).
      transmit: (bytes) => this.transmitPaced(bytes),
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
    this.stopUart();
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
    this.stopUart();
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

  private transmitPaced(bytes: Uint8Array): void {
    for (const b of bytes) this.txQueue.push(b);
    this.pumpUart();
  }

  /** Hands over every byte whose last bit has left by now, and wakes up for the next. */
  private pumpUart(): void {
    this.txTimer = undefined;
    const now = this.clock.now();
    if (this.txDoneAt < now - this.byteMs) this.txDoneAt = now - this.byteMs;
    let n = 0;
    while (n < this.txQueue.length && this.txDoneAt + this.byteMs <= now + 1e-9) {
      this.txDoneAt += this.byteMs;
      n++;
    }
    if (n > 0) this.emit(Uint8Array.from(this.txQueue.splice(0, n)));
    if (this.txQueue.length > 0) this.txTimer = this.clock.schedule(this.txDoneAt + this.byteMs - now, () => this.pumpUart());
  }

  private stopUart(): void {
    this.txTimer?.cancel();
    this.txTimer = undefined;
    this.txQueue = [];
  }

  private emit(bytes: Uint8Array): void {
    for (const listener of this.listeners) listener(bytes);
  }
}
