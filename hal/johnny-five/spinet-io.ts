/**
 * A johnny-five IO plugin (rwaldron/io-plugins) over any HAL's `Gpio`, so a johnny-five program
 * drives the bridge board's spare pins while the network uses the same serial link:
 *
 *   const board = new five.Board({ io: new SpinetIO({ gpio: hal.gpio }), repl: false });
 *
 * johnny-five calls are synchronous and the link is not: each call starts the Gpio operation and
 * returns; the HAL executes operations in call order (like its SPI batches), and a failure is
 * emitted as 'error'. Pins the bridge uses (UART, INT, chip RESET, SPI, CS) report no modes and
 * refuse pinMode. Digital reads come from the Gpio's pin-change reports (plus optional polling);
 * analog reads are sampled every `samplingInterval` ms, like Firmata.
 */
import { EventEmitter } from 'node:events';
import type { Gpio, PinMode } from '../../src/drivers/hal.js';
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { RealClock } from '../../src/time/real-clock.js';
import { layoutForPinCount, type PinLayout } from './layout.js';

/** io-plugins MODES, plus Firmata's PULLUP (0x0B). */
export const MODES = Object.freeze({ INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, SERVO: 4, PULLUP: 0x0b });
export type Mode = (typeof MODES)[keyof typeof MODES];

/** io-plugins: "analogChannel: 127 if not an analog pin". */
const NO_ANALOG_CHANNEL = 127;
/** Firmata's default sampling interval is 19 ms; every sample is a round trip over the link here. */
export const DEFAULT_SAMPLING_INTERVAL_MS = 50;

export interface PinState {
  supportedModes: Mode[];
  mode: Mode | undefined;
  value: number;
  report: 0 | 1;
  analogChannel: number;
}

export interface SpinetIOOptions {
  readonly gpio: Gpio;
  /** Pin capabilities; default: chosen by `gpio.pinCount` (Uno 20, Nano 22, Mega 70). */
  readonly layout?: PinLayout;
  /** Pins to keep away from johnny-five; default: the layout's bridge pins. */
  readonly reservedPins?: readonly number[];
  readonly clock?: Clock;
  /** Analog sampling interval (default 50 ms). */
  readonly samplingInterval?: number;
  /** Also poll reported digital inputs this often, for a Gpio without pin-change reports. */
  readonly digitalPollInterval?: number;
  readonly name?: string;
}

type Reader = (value: number) => void;

export class SpinetIO extends EventEmitter {
  readonly MODES = MODES;
  readonly HIGH = 1;
  readonly LOW = 0;
  readonly RESOLUTION = Object.freeze({ ADC: 1023, DAC: null, PWM: 255 });
  readonly SERIAL_PORT_IDs = Object.freeze({});
  readonly name: string;
  /** The Uno's LED is on pin 13, which is SCK here (it flickers with SPI traffic): no default LED. */
  readonly defaultLed: number | undefined = undefined;
  readonly pins: PinState[];
  /** Digital pin number of each analog channel (analogPins[0] is A0). */
  readonly analogPins: number[];
  isReady = false;

  private readonly gpio: Gpio;
  private readonly clock: Clock;
  private readonly reserved: ReadonlySet<number>;
  private readonly digitalReaders = new Map<number, Reader[]>();
  private readonly analogReaders = new Map<number, Reader[]>();
  private unsubscribePinChange: (() => void) | undefined;
  private samplingInterval: number;
  private readonly digitalPollInterval: number | undefined;
  private analogTimer: TimerHandle | undefined;
  private digitalTimer: TimerHandle | undefined;
  private closed = false;

  constructor(options: SpinetIOOptions) {
    super();
    this.gpio = options.gpio;
    this.clock = options.clock ?? new RealClock();
    this.samplingInterval = options.samplingInterval ?? DEFAULT_SAMPLING_INTERVAL_MS;
    this.digitalPollInterval = options.digitalPollInterval;
    const layout = options.layout ?? layoutForPinCount(options.gpio.pinCount);
    this.name = options.name ?? `spinet ${layout.name}`;
    this.reserved = new Set(options.reservedPins ?? layout.reservedPins);
    this.analogPins = [...layout.analogPins];
    this.pins = Array.from({ length: layout.pinCount }, (_, pin) => {
      const channel = layout.analogPins.indexOf(pin);
      const supportedModes: Mode[] = this.reserved.has(pin)
        ? []
        : layout.analogOnlyPins.includes(pin)
          ? [MODES.ANALOG]
          : [
              MODES.INPUT,
              MODES.PULLUP,
              MODES.OUTPUT,
              ...(channel >= 0 ? [MODES.ANALOG] : []),
              ...(layout.pwmPins.includes(pin) ? [MODES.PWM] : []),
            ];
      return { supportedModes, mode: undefined, value: 0, report: 0, analogChannel: channel >= 0 ? channel : NO_ANALOG_CHANNEL };
    });
    // The Gpio is ready when it is handed over: announce it once the caller has subscribed.
    process.nextTick(() => {
      if (this.closed) return;
      this.emit('connect');
      this.isReady = true;
      this.emit('ready');
    });
  }

  /** 'A0'…: the analog pin's digital number; numbers are pin numbers already. */
  normalize(pin: number | string): number {
    if (typeof pin === 'string') {
      const analog = /^A(\d+)$/i.exec(pin);
      if (analog) return this.analogPins[Number(analog[1])] ?? Number.NaN;
      return Number(pin);
    }
    return pin;
  }

  pinMode(pin: number, mode: Mode): this {
    const target = mode === MODES.ANALOG ? this.analogPin(pin) : pin;
    const state = this.usablePin(target);
    if (!state.supportedModes.includes(mode)) {
      throw new Error(`pin ${target} does not support mode ${modeName(mode)} (supports ${state.supportedModes.map(modeName).join(', ')})`);
    }
    state.mode = mode;
    this.run(this.gpio.pinMode(target, gpioMode(mode)));
    return this;
  }

  digitalWrite(pin: number, value: number): this {
    const state = this.usablePin(pin);
    const level = value ? 1 : 0;
    if (state.mode === MODES.INPUT || state.mode === MODES.PULLUP) {
      // Firmata convention johnny-five relies on (Button isPullup): HIGH on an input = pull-up.
      state.mode = level ? MODES.PULLUP : MODES.INPUT;
      this.run(this.gpio.pinMode(pin, level ? 'input-pullup' : 'input'));
      return this;
    }
    state.value = level;
    this.run(this.gpio.digitalWrite(pin, level));
    return this;
  }

  /** Report the pin's value now and on every change. */
  digitalRead(pin: number, handler: Reader): this {
    const state = this.usablePin(pin);
    state.report = 1;
    this.addReader(this.digitalReaders, pin, handler);
    this.unsubscribePinChange ??= this.gpio.onPinChange((changed, value) => this.deliverDigital(changed, value));
    this.readDigital(pin);
    this.startDigitalPolling();
    return this;
  }

  reportDigitalPin(pin: number, enable: 0 | 1): this {
    this.usablePin(pin).report = enable;
    if (!enable) this.digitalReaders.delete(pin);
    return this;
  }

  /** `pin` is an analog channel (0 = A0) or the analog pin's digital number. Sampled every `samplingInterval`. */
  analogRead(pin: number, handler: Reader): this {
    const target = this.analogPin(pin);
    const state = this.usablePin(target);
    state.report = 1;
    this.addReader(this.analogReaders, target, handler);
    this.startAnalogSampling();
    return this;
  }

  reportAnalogPin(pin: number, enable: 0 | 1): this {
    const target = this.analogPin(pin);
    this.usablePin(target).report = enable;
    if (!enable) this.analogReaders.delete(target);
    return this;
  }

  setSamplingInterval(ms: number): this {
    this.samplingInterval = Math.max(1, ms);
    return this;
  }

  /** PWM duty 0..255 (`RESOLUTION.PWM`). */
  pwmWrite(pin: number, value: number): this {
    const state = this.usablePin(pin);
    const duty = Math.max(0, Math.min(255, Math.round(value)));
    state.value = duty;
    this.run(this.gpio.pwmWrite(pin, duty));
    return this;
  }

  analogWrite(pin: number, value: number): this {
    return this.pwmWrite(pin, value);
  }

  queryPinState(pin: number, callback: () => void): this {
    const state = this.usablePin(pin);
    this.run(
      this.gpio.digitalRead(pin).then((value) => {
        state.value = value;
        callback();
      }),
    );
    return this;
  }

  servoConfig(): never {
    throw unsupported('servo');
  }
  servoWrite(): never {
    throw unsupported('servo');
  }
  i2cConfig(): never {
    throw unsupported('I2C (A4/A5 are plain pins here)');
  }
  i2cWrite(): never {
    throw unsupported('I2C');
  }
  i2cWriteReg(): never {
    throw unsupported('I2C');
  }
  i2cRead(): never {
    throw unsupported('I2C');
  }
  i2cReadOnce(): never {
    throw unsupported('I2C');
  }
  serialConfig(): never {
    throw unsupported('serial (the UART is the bridge link)');
  }
  serialWrite(): never {
    throw unsupported('serial');
  }
  serialRead(): never {
    throw unsupported('serial');
  }
  pingRead(): never {
    throw unsupported('pingRead');
  }

  /** Stop sampling and reporting; the Gpio (and the HAL) stay open. */
  close(): void {
    this.closed = true;
    this.analogTimer?.cancel();
    this.digitalTimer?.cancel();
    this.unsubscribePinChange?.();
    this.unsubscribePinChange = undefined;
    this.digitalReaders.clear();
    this.analogReaders.clear();
    this.emit('close');
  }

  private usablePin(pin: number): PinState {
    const state = this.pins[pin];
    if (!Number.isInteger(pin) || !state) throw new RangeError(`no pin ${pin} on ${this.name} (pins 0..${this.pins.length - 1})`);
    if (this.reserved.has(pin)) throw new Error(`pin ${pin} is used by the spinet bridge (UART, INT, chip RESET, SPI or CS)`);
    return state;
  }

  /** Analog channel numbers (0..) name their pins; pins 0..5 are never analog on these boards. */
  private analogPin(pin: number): number {
    return pin < this.analogPins.length ? this.analogPins[pin] : pin;
  }

  private addReader(readers: Map<number, Reader[]>, pin: number, handler: Reader): void {
    const list = readers.get(pin) ?? [];
    list.push(handler);
    readers.set(pin, list);
  }

  private readDigital(pin: number): Promise<void> {
    return this.run(this.gpio.digitalRead(pin).then((value) => this.deliverDigital(pin, value)));
  }

  private deliverDigital(pin: number, value: number): void {
    const state = this.pins[pin];
    const handlers = this.digitalReaders.get(pin);
    if (!state || !handlers || this.closed) return;
    state.value = value;
    for (const handler of handlers) handler(value);
    this.emit(`digital-read-${pin}`, value);
  }

  private startDigitalPolling(): void {
    const interval = this.digitalPollInterval;
    if (interval === undefined || this.digitalTimer?.pending) return;
    const poll = () => {
      if (this.closed || this.digitalReaders.size === 0) return;
      void Promise.all([...this.digitalReaders.keys()].map((pin) => this.readDigital(pin))).then(() => {
        if (!this.closed) this.digitalTimer = this.clock.schedule(interval, poll);
      });
    };
    this.digitalTimer = this.clock.schedule(interval, poll);
  }

  private startAnalogSampling(): void {
    if (this.analogTimer?.pending) return;
    // The next sample is scheduled when this one is back, so a slow link is never flooded.
    const sample = () => {
      if (this.closed || this.analogReaders.size === 0) return;
      const reads = [...this.analogReaders.keys()].map((pin) =>
        this.run(
          this.gpio.analogRead(pin).then((value) => {
            const state = this.pins[pin];
            const handlers = this.analogReaders.get(pin);
            if (!state || !handlers || this.closed) return;
            state.value = value;
            for (const handler of handlers) handler(value);
            this.emit(`analog-read-${state.analogChannel}`, value);
          }),
        ),
      );
      void Promise.all(reads).then(() => {
        if (!this.closed) this.analogTimer = this.clock.schedule(this.samplingInterval, sample);
      });
    };
    this.analogTimer = this.clock.schedule(0, sample);
  }

  /** Start a Gpio operation; its failure becomes an 'error' event (johnny-five forwards it). */
  private run(operation: Promise<unknown>): Promise<void> {
    return operation.then(
      () => undefined,
      (error: unknown) => {
        if (this.listenerCount('error') > 0) this.emit('error', error);
      },
    );
  }
}

function gpioMode(mode: Mode): PinMode {
  switch (mode) {
    case MODES.INPUT:
      return 'input';
    case MODES.PULLUP:
      return 'input-pullup';
    case MODES.OUTPUT:
      return 'output';
    case MODES.ANALOG:
      return 'analog';
    case MODES.PWM:
      return 'pwm';
    default:
      throw unsupported(`pin mode ${modeName(mode)}`);
  }
}

function modeName(mode: number): string {
  return Object.entries(MODES).find(([, value]) => value === mode)?.[0] ?? String(mode);
}

function unsupported(feature: string): Error {
  return new Error(`${feature}: not supported by the spinet IO plugin`);
}
