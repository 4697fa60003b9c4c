import { afterEach, describe, expect, it } from 'vitest';
import { MODES, SpinetIO } from '../../hal/johnny-five/spinet-io.js';
import { FakeGpio } from './fake-gpio.js';
import { boardReady, five, type FiveBoard } from './five.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let io: SpinetIO | undefined;
afterEach(() => io?.close());

/** Components must name their board: johnny-five otherwise attaches them to the first ever made. */
async function board(gpio: FakeGpio): Promise<FiveBoard> {
  io = new SpinetIO({ gpio, samplingInterval: 5 });
  const b = new five.Board({ io, repl: false, debug: false, sigint: false });
  await boardReady(b);
  return b;
}

describe('SpinetIO as an io-plugin', () => {
  it('announces connect then ready, and describes an Uno minus the bridge pins', async () => {
    const plugin = new SpinetIO({ gpio: new FakeGpio(20) });
    io = plugin;
    const events: string[] = [];
    plugin.on('connect', () => events.push(`connect ready=${plugin.isReady}`));
    plugin.on('ready', () => events.push(`ready ready=${plugin.isReady}`));
    await sleep(0);
    expect(events).toEqual(['connect ready=false', 'ready ready=true']);
    expect(plugin.pins).toHaveLength(20);
    expect(plugin.analogPins).toEqual([14, 15, 16, 17, 18, 19]);
    for (const pin of [0, 1, 2, 9, 10, 11, 12, 13]) expect(plugin.pins[pin].supportedModes).toEqual([]);
    expect(plugin.pins[3].supportedModes).toContain(MODES.PWM);
    expect(plugin.pins[8].supportedModes).not.toContain(MODES.PWM);
    expect(plugin.pins[14]).toMatchObject({ analogChannel: 0 });
    expect(plugin.pins[8]).toMatchObject({ analogChannel: 127 });
    expect(plugin.normalize('A2')).toBe(16);
    expect(() => plugin.pinMode(10, MODES.OUTPUT)).toThrow(/used by the spinet bridge/);
    expect(() => plugin.servoWrite()).toThrow(/not supported/);
  });
});

describe('johnny-five over a fake Gpio', () => {
  it('blinks an LED on pin 8', async () => {
    const gpio = new FakeGpio();
    const b = await board(gpio);
    const led = new five.Led({ pin: 8, board: b });
    expect(gpio.modes.get(8)).toBe('output');
    led.blink(10);
    await sleep(80);
    led.stop().off();
    await sleep(0);
    const writes = gpio.log.filter((entry) => entry.startsWith('write 8'));
    expect(writes.length).toBeGreaterThanOrEqual(4);
    expect(writes).toContain('write 8 1');
    expect(writes.at(-1)).toBe('write 8 0');
  });

  it('dims an LED on PWM pin 5', async () => {
    const gpio = new FakeGpio();
    const b = await board(gpio);
    new five.Led({ pin: 5, board: b }).brightness(128);
    await sleep(0);
    expect(gpio.modes.get(5)).toBe('pwm');
    expect(gpio.duty.get(5)).toBe(128);
  });

  it('reads a pulled-up button on pin 7: pressing pulls it low', async () => {
    const gpio = new FakeGpio();
    const b = await board(gpio);
    const button = new five.Button({ pin: 7, isPullup: true, board: b });
    const events: string[] = [];
    button.on('down', () => events.push('down'));
    button.on('up', () => events.push('up'));
    await sleep(5);
    expect(gpio.modes.get(7)).toBe('input-pullup');
    gpio.drive(7, 0);
    await sleep(20); // johnny-five debounces for 7 ms
    gpio.drive(7, 1);
    await sleep(20);
    expect(events).toEqual(['down', 'up']);
  });

  it('samples an analog sensor on A0', async () => {
    const gpio = new FakeGpio();
    const b = await board(gpio);
    gpio.analog.set(14, 512);
    const sensor = new five.Sensor({ pin: 'A0', freq: 5, board: b });
    const values: number[] = [];
    sensor.on('data', () => values.push(sensor.value));
    await sleep(40);
    expect(gpio.modes.get(14)).toBe('analog');
    expect(values).toContain(512);
  });

  it('refuses a bridge pin from johnny-five', async () => {
    const gpio = new FakeGpio();
    const b = await board(gpio);
    expect(() => new five.Led({ pin: 13, board: b })).toThrow(/used by the spinet bridge/);
    expect(gpio.modes.has(13)).toBe(false);
  });
});
