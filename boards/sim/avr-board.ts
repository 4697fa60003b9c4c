/**
 * The bridge sketch's committed hex running in avr8js on a simulated ATmega328P at 16 MHz: CPU,
 * timers 0–2 (millis, PWM), USART0, SPI (the chip on it, selected by the sketch's CS pin), ports
 * B/C/D with the chip's INT on INT0 (D2) and its RESET on D9, and the ADC.
 *
 * Time: in real-time mode the CPU is paced against the wall clock (5 ms ticks); otherwise the
 * given VirtualClock is advanced to the CPU's simulated time as it runs, as fast as the emulator
 * goes (≈4× real time), and the CPU stops at each pending timer so link delays land on the cycle.
 *
 * Implements `SimulatedMcu` (boards/bootloader/auto-reset.ts), so the optiboot emulator can sit
 * in front of it.
 */
import {
  AVRADC,
  AVRIOPort,
  AVRSPI,
  AVRTimer,
  AVRUSART,
  CPU,
  PinState,
  adcConfig,
  portBConfig,
  portCConfig,
  portDConfig,
  spiConfig,
  timer0Config,
  timer1Config,
  timer2Config,
  usart0Config,
} from 'avr8js';
import type { Clock } from '../../src/time/clock.js';
import type { VirtualClock } from '../../src/time/virtual-clock.js';
import type { SimulatedMcu } from '../bootloader/auto-reset.js';
import { parseIntelHex, programMemory } from '../bootloader/intel-hex.js';
import { misread, ratesMatch } from '../bootloader/uart-line.js';
import { honestInterruptTiming, type InterruptTiming } from './avr-timing.js';
import type { SpiChip } from './chip.js';

export const AVR_CLOCK_HZ = 16_000_000;
const CYCLES_PER_MS = AVR_CLOCK_HZ / 1000;
/** SPCR (ATmega328P datasheet §19.5.1): its data address and bits. */
const SPCR_ADDRESS = 0x4c;
const SPCR_DORD = 0x20, SPCR_CPOL = 0x08, SPCR_CPHA = 0x04;
/** 210 ns of chip-select hold after the last SPI clock, in 16 MHz cycles (rounded up). */
const CS_HOLD_CYCLES = Math.ceil(0.21e-6 * AVR_CLOCK_HZ);

function reverseBits(byte: number): number {
  let out = 0;
  for (let i = 0; i < 8; i++) if (byte & (1 << i)) out |= 0x80 >> i;
  return out;
}
/** Virtual mode: longest CPU run between two looks at the event loop. */
const SLICE_CYCLES = 8_000;
/** After bytes reached the host: this many event-loop turns of HOST_TURN_CYCLES (5 µs) each. */
const HOST_TURNS = 16;
const HOST_TURN_CYCLES = 80;
/** Real-time mode: pacing tick and the most wall time one tick may catch up. */
const TICK_MS = 2;
const MAX_CATCH_UP_MS = 50;

export type PinLevel = 'low' | 'high' | 'input' | 'input-pullup';

export interface AvrBridgeMcuOptions {
  /** Intel HEX text of the sketch. */
  readonly hex: string;
  readonly chip: SpiChip;
  readonly clock: Clock;
  /** Pace against the wall clock (default) or drive `clock` (a VirtualClock) as fast as possible. */
  readonly realtime: boolean;
  readonly csPin?: number;
  readonly intPin?: number;
  readonly resetPin?: number;
}

interface Pins {
  readonly cpu: CPU;
  readonly ports: readonly [AVRIOPort, AVRIOPort, AVRIOPort]; // B, C, D
  readonly usart: AVRUSART;
  readonly adc: AVRADC;
  readonly receiver: ReceiveFifo;
  readonly timing: InterruptTiming;
}

/** Arduino pin → [port index in Pins.ports, bit]. ATmega328P "standard" variant. */
function portOf(pin: number): [0 | 1 | 2, number] {
  if (pin < 8) return [2, pin];
  if (pin < 14) return [0, pin - 8];
  if (pin < 20) return [1, pin - 14];
  throw new RangeError(`no pin ${pin} on an ATmega328P board`);
}

/** PWM outputs: pin → [TCCRnA address, COM bit mask, OCR address] (ATmega328P datasheet §15–18). */
const PWM_OUTPUTS: Readonly<Record<number, readonly [number, number, number]>> = {
  6: [0x44, 0x80, 0x47],
  5: [0x44, 0x20, 0x48],
  9: [0x80, 0x80, 0x88],
  10: [0x80, 0x20, 0x8a],
  11: [0xb0, 0x80, 0xb3],
  3: [0xb0, 0x20, 0xb4],
};

export const ATMEGA328P_PIN_COUNT = 20;

/** UCSR0A's receive error flags (ATmega328P datasheet §20.11.2). */
const UCSRA_FE = 0x10;
const UCSRA_DOR = 0x08;

export interface ReceiveFifo {
  /** Start shifting a byte in; false while the shift register is busy (or the receiver is off). */
  offer(byte: number): boolean;
  /** Bytes lost because both FIFO places were taken when the next one finished. */
  overruns: number;
  /** Fault injection: the next byte is lost as in an overrun (DOR set), whatever the FIFO holds. */
  loseNext: number;
}

/**
 * The ATmega328P receiver has a two-byte FIFO behind UDR plus the shift register (datasheet
 * §20.7.4): an ISR may start up to two character times late without losing a byte, which is what
 * lets a 16 MHz AVR take 2 Mbaud while timer and pin-change interrupts run. avr8js 0.21 keeps one
 * byte and overwrites it. This models the FIFO: `offer` starts shifting a byte in (false while the
 * shift register is busy); a byte finishing at a full FIFO is lost and sets DOR, which reads set
 * in UCSR0A until UDR0 is next read (§20.11.2: "valid until the receive buffer (UDRn) is read").
 */
function modelReceiveFifo(cpu: CPU, usart: AVRUSART, onShiftFree: () => void, onShifted: (byte: number) => void): ReceiveFifo {
  type Interrupt = Parameters<CPU['setInterruptFlag']>[0];
  const internals = usart as unknown as { RXC: Interrupt; cyclesPerChar: number };
  const fifo: number[] = [];
  let shifting = false;
  let overrun = false;
  const state: ReceiveFifo = {
    overruns: 0,
    loseNext: 0,
    offer(byte: number): boolean {
      if (shifting || !usart.rxEnable) return false;
      shifting = true;
      cpu.addClockEvent(() => {
        shifting = false;
        onShifted(byte);
        if (fifo.length < 2 && state.loseNext === 0) {
          fifo.push(byte);
        } else {
          if (state.loseNext > 0) state.loseNext--;
          state.overruns++;
          overrun = true;
        }
        if (fifo.length > 0) cpu.setInterruptFlag(internals.RXC);
        onShiftFree();
      }, internals.cyclesPerChar);
      return true;
    },
  };
  const { UCSRA, UDR } = usart0Config;
  cpu.readHooks[UCSRA] = () => (cpu.data[UCSRA]! & ~(UCSRA_FE | UCSRA_DOR)) | (overrun ? UCSRA_DOR : 0);
  cpu.readHooks[UDR] = () => {
    const byte = fifo.shift() ?? 0;
    overrun = false;
    if (fifo.length > 0) cpu.setInterruptFlag(internals.RXC);
    else cpu.clearInterrupt(internals.RXC);
    return byte;
  };
  return state;
}

/**
 * The ATmega328P transmitter is double-buffered (datasheet §20.6.3): a UDR write moves into the
 * shift register at once when it is idle, so UDRE is set again right away and the next byte can
 * wait in UDR while the previous one shifts out — back-to-back bytes go at exactly one character
 * time each. avr8js 0.21 keeps UDRE clear for a whole character after every write, so a polling
 * sketch loses its reaction time on every byte (≈1.5 character times per byte). This replaces the
 * UDR write hook with the two-stage model; bytes reach the line when they finish shifting out.
 */
function modelTransmitBuffer(cpu: CPU, usart: AVRUSART, emit: (byte: number) => void): void {
  // The interrupt descriptors avr8js keeps private; the flag bits are the datasheet's.
  type Interrupt = Parameters<CPU['setInterruptFlag']>[0];
  const internals = usart as unknown as { UDRE: Interrupt; TXC: Interrupt; cyclesPerChar: number };
  const { UDRE, TXC } = internals;
  let shifting = false;
  let waiting: number | undefined;
  const startShift = (byte: number) => {
    shifting = true;
    cpu.addClockEvent(() => {
      emit(byte);
      if (waiting !== undefined) {
        const next = waiting;
        waiting = undefined;
        startShift(next);
        cpu.setInterruptFlag(UDRE);
      } else {
        shifting = false;
        cpu.setInterruptFlag(TXC);
      }
    }, internals.cyclesPerChar);
  };
  cpu.writeHooks[usart0Config.UDR] = (value) => {
    cpu.clearInterrupt(TXC);
    if (!shifting) {
      startShift(value);
      // Moved to the shift register: UDR is free again (UDRE stays set).
      cpu.setInterruptFlag(UDRE);
    } else {
      waiting = value;
      cpu.clearInterrupt(UDRE);
    }
    return true;
  };
}

export class AvrBridgeMcu implements SimulatedMcu {
  readonly flash: Uint16Array;
  /** Host bytes waiting for the USART receiver, and the rate each was sent at (0: the board's). */
  private readonly rxQueue: number[] = [];
  private readonly rxRates: number[] = [];
  private readonly txListeners = new Set<(bytes: Uint8Array) => void>();
  private readonly rxListeners = new Set<(byte: number) => void>();
  private readonly pinListeners = new Set<(pin: number, level: PinLevel) => void>();
  private pins: Pins | undefined;
  private pinSnapshot: PinLevel[] = [];
  private chipSelected = false;
  /** The cycle the SPI byte in progress (or the last one) ends at. */
  private spiTransferEnd = -Infinity;
  private resetLow = false;
  private baseMs = 0;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastWall = 0;
  private readonly inputs = new Map<number, boolean>();
  private readonly analog = new Map<number, number>();
  private readonly csPin: number;
  private readonly intPin: number;
  private readonly resetPin: number;
  private readonly unsubscribeChip: () => void;
  /** Cycles executed since the simulation started (all resets together). */
  totalCycles = 0;
  /** Process CPU milliseconds spent executing AVR instructions (the emulator's share of host CPU). */
  executeCpuMs = 0;
  /** The cycle the slice in progress ends at (execute; endSliceBy may bring it forward). */
  private sliceEnd = 0;
  /** Short slices left for the host to answer a frame (virtual time only). */
  private hostTurns = 0;
  private lastSent = 0;
  resets = 0;
  /** A 0x00 (the bridge's frame delimiter) went out during the current run of instructions. */
  private frameSent = false;

  constructor(private readonly options: AvrBridgeMcuOptions) {
    this.flash = programMemory(parseIntelHex(options.hex));
    this.csPin = options.csPin ?? 10;
    this.intPin = options.intPin ?? 2;
    this.resetPin = options.resetPin ?? 9;
    this.unsubscribeChip = options.chip.onInterruptChange(() => this.driveInterrupt());
  }

  // ---- SimulatedMcu ----

  /** Reset the CPU and run the sketch from address 0 (power-on or DTR reset). */
  run(): void {
    this.resets++;
    const cpu = new CPU(this.flash);
    new AVRTimer(cpu, timer0Config);
    new AVRTimer(cpu, timer1Config);
    new AVRTimer(cpu, timer2Config);
    const ports = [portBConfig, portCConfig, portDConfig].map((config) => new AVRIOPort(cpu, config)) as unknown as Pins['ports'];
    const usart = new AVRUSART(cpu, usart0Config, AVR_CLOCK_HZ);
    const spi = new AVRSPI(cpu, spiConfig, AVR_CLOCK_HZ);
    const adc = new AVRADC(cpu, adcConfig);
    for (const [channel, volts] of this.analog) adc.channelValues[channel] = volts;
    modelTransmitBuffer(cpu, usart, (byte) => this.transmit(byte));
    const receiver = modelReceiveFifo(
      cpu,
      usart,
      () => this.pumpRx(),
      (byte) => {
        for (const listener of this.rxListeners) listener(byte);
      },
    );
    spi.onByte = (mosi) => {
      const miso = this.chipSelected ? this.exchangeAsWired(cpu, mosi) : 0xff;
      this.spiTransferEnd = cpu.cycles + spi.transferCycles;
      cpu.addClockEvent(() => spi.completeTransfer(miso), spi.transferCycles);
    };
    this.pins = { cpu, ports, usart, adc, receiver, timing: honestInterruptTiming(cpu) };
    this.baseMs = this.options.clock.now();
    this.rxQueue.length = 0;
    this.rxRates.length = 0;
    for (const port of ports) port.addListener(() => this.onPortWrite());
    for (const [pin, high] of this.inputs) this.applyInput(pin, high);
    this.driveInterrupt();
    this.pinSnapshot = this.readPins();
    if (this.chipSelected) this.releaseChipSelect();
    this.chipSelected = false;
    this.spiTransferEnd = -Infinity; // the new CPU counts cycles from 0
    this.resetLow = false;
    this.start();
  }

  /** Hold the CPU in reset (pins float, nothing runs). */
  halt(): void {
    this.pins = undefined;
    this.rxQueue.length = 0;
    this.rxRates.length = 0;
    if (this.chipSelected) this.releaseChipSelect();
    this.chipSelected = false;
  }

  /**
   * Host → USART RX. `senderBaud`: the rate the host sends at; a byte that reaches the receiver
   * while the sketch's UART runs at another rate is read as the receiver reads it (uart-line.ts).
   */
  receive(bytes: Uint8Array, senderBaud = 0): void {
    if (!this.pins) return;
    for (const b of bytes) {
      this.rxQueue.push(b);
      this.rxRates.push(senderBaud);
    }
    this.pumpRx();
    // Real time: run the CPU up to now at once rather than at the next pacing tick, so a request
    // is not kept waiting up to TICK_MS before the sketch sees it (a real board would be at it).
    if (this.options.realtime && this.running && !this.tickSoon) {
      this.tickSoon = true;
      setImmediate(() => {
        this.tickSoon = false;
        if (!this.running) return;
        if (this.timer) clearTimeout(this.timer);
        this.realtimeTick();
      });
    }
  }

  private tickSoon = false;

  onTransmit(listener: (bytes: Uint8Array) => void): () => void {
    this.txListeners.add(listener);
    return () => this.txListeners.delete(listener);
  }

  /** A host byte finished shifting into the USART (at `timeMs`), whether the FIFO had room or not. */
  onReceive(listener: (byte: number) => void): () => void {
    this.rxListeners.add(listener);
    return () => this.rxListeners.delete(listener);
  }

  /** Power off: like halt, for the serial link's "unplugged with the board". */
  powerOff(): void {
    this.halt();
  }

  // ---- pins, for tests and the johnny-five plugin's tests ----

  /** What a pin does now, as a multimeter (or an LED) would see it. */
  pinLevel(pin: number): PinLevel {
    if (!this.pins) return 'input';
    const [port, bit] = portOf(pin);
    switch (this.pins.ports[port].pinState(bit)) {
      case PinState.Low:
        return 'low';
      case PinState.High:
        return 'high';
      case PinState.InputPullUp:
        return 'input-pullup';
      default:
        return 'input';
    }
  }

  /** Drive an input pin from outside (a button to ground: `false`). */
  setInput(pin: number, high: boolean): void {
    this.inputs.set(pin, high);
    this.applyInput(pin, high);
  }

  /** Put `volts` (0..5) on analog channel `channel` (A0 = 0). */
  setAnalog(channel: number, volts: number): void {
    this.analog.set(channel, volts);
    if (this.pins) this.pins.adc.channelValues[channel] = volts;
  }

  /** PWM duty (0..255) a pin's timer output is generating, or undefined when it is not PWM. */
  pwmDuty(pin: number): number | undefined {
    const output = PWM_OUTPUTS[pin];
    if (!output || !this.pins) return undefined;
    const [tccr, comMask, ocr] = output;
    const data = this.pins.cpu.data;
    return data[tccr]! & comMask ? data[ocr]! : undefined;
  }

  /** Every change of a pin's level; returns an unsubscribe function. */
  onPinChange(listener: (pin: number, level: PinLevel) => void): () => void {
    this.pinListeners.add(listener);
    return () => this.pinListeners.delete(listener);
  }

  /** The running CPU (undefined while halted): for inspection. */
  get cpu(): CPU | undefined {
    return this.pins?.cpu;
  }

  /** Cycles spent in each interrupt handler since the last reset, by vector (avr-timing.ts). */
  get interruptHandlers(): ReadonlyMap<number, { readonly count: number; readonly cycles: number }> {
    return this.pins?.timing.handlers ?? new Map();
  }

  /** Bytes the UART lost since the last reset (its two-byte FIFO full: data overrun). */
  get uartOverruns(): number {
    return this.pins?.receiver.overruns ?? 0;
  }

  /** Fault injection: the UART loses the next `count` bytes from the host, as in an overrun. */
  loseReceivedBytes(count = 1): void {
    if (this.pins) this.pins.receiver.loseNext += count;
  }

  /** USART baud rate the sketch configured. */
  get baudRate(): number | undefined {
    return this.pins?.usart.baudRate;
  }

  /**
   * The AVR's own time on the clock's scale, or undefined while it is off. With a VirtualClock it
   * runs up to a slice ahead of `clock.now()` while it executes (the clock catches up after).
   */
  get timeMs(): number | undefined {
    return this.pins ? this.baseMs + this.pins.cpu.cycles / CYCLES_PER_MS : undefined;
  }

  /**
   * Something the AVR's peripherals started (a chip timer: a transmission's end) is due at
   * `atMs`: the slice in progress stops there, so the AVR sees its effect (TXIF, INT) on time.
   */
  endSliceBy(atMs: number): void {
    if (this.pins) this.sliceEnd = Math.min(this.sliceEnd, Math.max(this.pins.cpu.cycles + 1, Math.ceil((atMs - this.baseMs) * CYCLES_PER_MS)));
  }

  /** Simulated milliseconds since the last reset. */
  get uptimeMs(): number {
    return this.pins ? this.pins.cpu.cycles / CYCLES_PER_MS : 0;
  }

  // ---- run loop ----

  /**
   * Bytes just reached the host (the USB link model calls this when it hands them over): give the
   * host a few event-loop turns of short slices to answer, so its answer goes out at about the
   * simulated moment it could — not up to a whole slice later.
   */
  yieldToHost(): void {
    this.hostTurns = HOST_TURNS;
  }

  /** Start the run loop (run() does it; idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastWall = performance.now();
    if (this.options.realtime) this.timer = setTimeout(() => this.realtimeTick(), TICK_MS);
    else setImmediate(() => this.virtualSlice());
  }

  /** Stop the run loop for good. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.halt();
    this.unsubscribeChip();
  }

  private realtimeTick(): void {
    if (!this.running) return;
    const now = performance.now();
    const elapsed = Math.min(now - this.lastWall, MAX_CATCH_UP_MS);
    this.lastWall = now;
    const pins = this.pins;
    if (pins) this.execute(pins, pins.cpu.cycles + Math.round(elapsed * CYCLES_PER_MS));
    this.timer = setTimeout(() => this.realtimeTick(), TICK_MS);
  }

  private virtualSlice(): void {
    if (!this.running) return;
    const clock = this.options.clock as VirtualClock;
    const pins = this.pins;
    if (pins) {
      const next = clock.nextDeadline();
      // Just after bytes reached the host (yieldToHost): short slices for a few event-loop turns
      // (serialport's read path takes several).
      let target = pins.cpu.cycles + (this.hostTurns > 0 ? HOST_TURN_CYCLES : SLICE_CYCLES);
      if (this.hostTurns > 0) this.hostTurns--;
      if (next !== undefined) target = Math.min(target, Math.max(pins.cpu.cycles + 1, Math.ceil((next - this.baseMs) * CYCLES_PER_MS)));
      this.execute(pins, target);
      if (this.pins === pins) clock.advanceTo(this.baseMs + pins.cpu.cycles / CYCLES_PER_MS);
    } else {
      clock.advanceTo(clock.nextDeadline() ?? clock.now() + SLICE_CYCLES / CYCLES_PER_MS);
    }
    setImmediate(() => this.virtualSlice());
  }

  private execute(pins: Pins, endCycle: number): void {
    const { cpu, timing } = pins;
    const start = cpu.cycles;
    const cpuStart = process.cpuUsage();
    this.pumpRx();
    this.frameSent = false;
    // Virtual time: stop after a frame delimiter left the UART, so the host answers at the
    // simulated moment it could (with a whole slice it would answer up to SLICE_CYCLES late).
    const yieldOnFrameEnd = !this.options.realtime;
    this.sliceEnd = endCycle;
    while (cpu.cycles < this.sliceEnd && this.pins === pins) {
      timing.step();
      if (this.frameSent && yieldOnFrameEnd) break;
    }
    this.totalCycles += cpu.cycles - start;
    const cpuUsed = process.cpuUsage(cpuStart);
    this.executeCpuMs += (cpuUsed.user + cpuUsed.system) / 1000;
  }

  // ---- wiring ----

  private pumpRx(): void {
    const pins = this.pins;
    if (!pins || this.rxQueue.length === 0) return;
    const from = this.rxRates[0]!;
    const to = pins.usart.baudRate;
    if (from > 0 && !ratesMatch(from, to)) {
      // Decided as the byte reaches the receiver: the sketch may have switched rates since it was sent.
      const read = misread([this.rxQueue.shift()!], from, to);
      this.rxRates.shift();
      this.rxQueue.unshift(...read);
      this.rxRates.unshift(...read.map(() => 0));
      if (this.rxQueue.length === 0) return;
    }
    if (pins.receiver.offer(this.rxQueue[0]!)) {
      this.rxQueue.shift();
      this.rxRates.shift();
    }
  }

  private transmit(byte: number): void {
    // A delimiter after frame bytes ends a frame; more zeros are idle fill (SET_FILL).
    if (byte === 0 && this.lastSent !== 0) this.frameSent = true;
    this.lastSent = byte;
    const bytes = Uint8Array.of(byte);
    for (const listener of this.txListeners) listener(bytes);
  }

  private driveInterrupt(): void {
    // ENC28J60 INT is active low.
    if (this.pins) this.applyInput(this.intPin, !this.options.chip.interruptAsserted);
  }

  private applyInput(pin: number, high: boolean): void {
    if (!this.pins) return;
    const [port, bit] = portOf(pin);
    this.pins.ports[port].setPin(bit, high);
  }

  /**
   * One byte through the SPI as SPCR sets it up. The ENC28J60 takes mode 0,0 only, most
   * significant bit first (DS39662E §4.1); with DORD the chip sees the byte bit-reversed, and with
   * CPOL or CPHA it samples each bit half a clock off: a byte shifted by one. Either is reported.
   */
  private exchangeAsWired(cpu: CPU, mosi: number): number {
    const spcr = cpu.data[SPCR_ADDRESS]!;
    const report = (message: string) => this.options.chip.reportBusViolation?.(message);
    let out = mosi;
    if (spcr & SPCR_DORD) {
      report('SPCR.DORD set: the ENC28J60 shifts the most significant bit first');
      out = reverseBits(out);
    }
    const wrongMode = (spcr & (SPCR_CPOL | SPCR_CPHA)) !== 0;
    if (wrongMode) {
      report(`SPI mode ${(spcr >> 2) & 3} (SPCR.CPOL/CPHA): the ENC28J60 takes mode 0 only`);
      out = (out << 1) & 0xff;
    }
    let miso = this.options.chip.spiExchange(out) & 0xff;
    if (wrongMode) miso = (miso >> 1) | 0x80;
    if (spcr & SPCR_DORD) miso = reverseBits(miso);
    return miso;
  }

  /** The board reset or stopped with CS low: the pin floats high, ending whatever command was on. */
  private releaseChipSelect(): void {
    if (this.options.chip.spiAbort) this.options.chip.spiAbort();
    else this.options.chip.spiDeselect();
  }

  private onPortWrite(): void {
    this.pullUpFloatingInputs();
    const selected = this.pinLevel(this.csPin) === 'low';
    if (selected !== this.chipSelected && !selected && this.pins) {
      // CS must stay low until the last bit is clocked, and ≥ 210 ns after it for a MAC/MII
      // register (DS39662E Table 16-6, t_CSH); the sketch's shortest path (SPIF poll, then the
      // port write) takes longer, so less is a bug.
      const cycles = this.pins.cpu.cycles;
      if (cycles < this.spiTransferEnd) this.options.chip.reportBusViolation?.(`chip select raised mid-byte (${this.spiTransferEnd - cycles} cycles before the last clock)`);
      else if (cycles - this.spiTransferEnd < CS_HOLD_CYCLES) this.options.chip.reportBusViolation?.(`chip select raised ${cycles - this.spiTransferEnd} cycles after the last clock (< 210 ns hold)`);
    }
    if (selected !== this.chipSelected) {
      this.chipSelected = selected;
      if (selected) this.options.chip.spiSelect();
      else this.options.chip.spiDeselect();
    }
    const resetLow = this.pinLevel(this.resetPin) === 'low';
    if (resetLow && !this.resetLow) this.options.chip.hardReset();
    this.resetLow = resetLow;
    if (this.pinListeners.size === 0) return;
    const now = this.readPins();
    for (let pin = 0; pin < now.length; pin++) {
      if (now[pin] !== this.pinSnapshot[pin]) for (const listener of this.pinListeners) listener(pin, now[pin]!);
    }
    this.pinSnapshot = now;
  }

  /**
   * An input nothing outside drives reads its pull-up: high with INPUT_PULLUP, low without (a
   * floating pin on silicon reads noise; low is the deterministic choice). Pins the test or the
   * chip drive (setInput, INT) keep their driven level.
   */
  private pullUpFloatingInputs(): void {
    for (let pin = 0; pin < ATMEGA328P_PIN_COUNT; pin++) {
      if (pin === this.intPin || this.inputs.has(pin)) continue;
      const level = this.pinLevel(pin);
      if (level === 'input-pullup' || level === 'input') this.applyInput(pin, level === 'input-pullup');
    }
  }

  private readPins(): PinLevel[] {
    return Array.from({ length: ATMEGA328P_PIN_COUNT }, (_, pin) => this.pinLevel(pin));
  }
}
