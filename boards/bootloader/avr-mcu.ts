/**
 * A minimal simulated ATmega328P (avr8js: CPU, timer 0 for millis(), USART0, ports B/C/D) that
 * implements `SimulatedMcu`, paced to real time so a host tool (avrdude, a terminal) sees Uno
 * timing and the simulator does not spin a core. The full board with the ENC28J60 on SPI is
 * boards/sim; this one exists so the bootloader can be tested on its own.
 */
import {
  AVRIOPort,
  AVRTimer,
  AVRUSART,
  CPU,
  avrInstruction,
  portBConfig,
  portCConfig,
  portDConfig,
  timer0Config,
  usart0Config,
} from 'avr8js';
import type { SimulatedMcu } from './auto-reset.js';
import { ATMEGA328P_FLASH_BYTES } from './intel-hex.js';

const CLOCK_HZ = 16_000_000;
/** Pacing tick; each tick runs the cycles of the wall time that passed, at most `MAX_CATCH_UP_MS`. */
const TICK_MS = 5;
const MAX_CATCH_UP_MS = 50;

export class AvrMcu implements SimulatedMcu {
  readonly flash: Uint16Array;
  private cpu: CPU | undefined;
  private usart: AVRUSART | undefined;
  private ports: AVRIOPort[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastTick = 0;
  private readonly rxQueue: number[] = [];
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();

  constructor(flash?: Uint16Array) {
    this.flash = flash ?? new Uint16Array(ATMEGA328P_FLASH_BYTES / 2).fill(0xffff);
  }

  /** The running CPU's ports B, C, D (undefined while halted). */
  get gpio(): readonly AVRIOPort[] {
    return this.ports;
  }

  halt(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.cpu = undefined;
    this.usart = undefined;
    this.ports = [];
    this.rxQueue.length = 0;
  }

  run(): void {
    this.halt();
    // A fresh CPU and peripherals over the same flash is exactly a reset.
    const cpu = new CPU(this.flash);
    new AVRTimer(cpu, timer0Config);
    this.ports = [portBConfig, portCConfig, portDConfig].map((config) => new AVRIOPort(cpu, config));
    const usart = new AVRUSART(cpu, usart0Config, CLOCK_HZ);
    usart.onByteTransmit = (byte) => this.emit(Uint8Array.of(byte));
    usart.onRxComplete = () => this.pumpRx();
    this.cpu = cpu;
    this.usart = usart;
    this.lastTick = performance.now();
    this.schedule();
  }

  receive(bytes: Uint8Array): void {
    if (!this.cpu) return;
    this.rxQueue.push(...bytes);
    this.pumpRx();
  }

  onTransmit(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private pumpRx(): void {
    // The sketch may not have enabled the receiver yet; the next tick retries.
    if (this.usart && this.rxQueue.length > 0 && this.usart.writeByte(this.rxQueue[0])) this.rxQueue.shift();
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.tick(), TICK_MS);
  }

  private tick(): void {
    const cpu = this.cpu;
    if (!cpu) return;
    const now = performance.now();
    const elapsedMs = Math.min(now - this.lastTick, MAX_CATCH_UP_MS);
    this.lastTick = now;
    const end = cpu.cycles + Math.round((elapsedMs * CLOCK_HZ) / 1000);
    this.pumpRx();
    while (cpu.cycles < end && this.cpu === cpu) {
      avrInstruction(cpu);
      cpu.tick();
    }
    if (this.cpu === cpu) this.schedule();
  }

  private emit(bytes: Uint8Array): void {
    for (const listener of this.listeners) listener(bytes);
  }
}
