import type { Gpio, PinMode } from '../../src/drivers/hal.js';

/** A board's pins in memory: what the host last set, and a hand to press buttons. */
export class FakeGpio implements Gpio {
  readonly modes = new Map<number, PinMode>();
  readonly levels = new Map<number, 0 | 1>();
  readonly analog = new Map<number, number>();
  readonly duty = new Map<number, number>();
  /** Every operation, in the order it reached the board. */
  readonly log: string[] = [];
  private readonly listeners = new Set<(pin: number, value: 0 | 1) => void>();

  constructor(readonly pinCount = 20) {}

  async pinMode(pin: number, mode: PinMode): Promise<void> {
    this.log.push(`mode ${pin} ${mode}`);
    this.modes.set(pin, mode);
  }

  async digitalWrite(pin: number, value: 0 | 1): Promise<void> {
    this.log.push(`write ${pin} ${value}`);
    this.levels.set(pin, value);
  }

  async digitalRead(pin: number): Promise<0 | 1> {
    return this.levels.get(pin) ?? (this.modes.get(pin) === 'input-pullup' ? 1 : 0);
  }

  async analogRead(pin: number): Promise<number> {
    return this.analog.get(pin) ?? 0;
  }

  async pwmWrite(pin: number, duty: number): Promise<void> {
    this.log.push(`pwm ${pin} ${duty}`);
    this.duty.set(pin, duty);
  }

  onPinChange(listener: (pin: number, value: 0 | 1) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Something outside drives an input (a button to ground, say). */
  drive(pin: number, value: 0 | 1): void {
    this.levels.set(pin, value);
    for (const listener of this.listeners) listener(pin, value);
  }
}
