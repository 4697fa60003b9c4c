/**
 * johnny-five on the simulated Uno: SpinetIO over the BridgeHal's Gpio, so johnny-five's commands
 * travel the same serial link as the ENC28J60's SPI batches, through the committed sketch in
 * avr8js to the emulated pins. While an LED blinks and a button is pressed, the board keeps
 * answering pings and moves a TCP transfer. Real time (johnny-five keeps its own wall-clock timers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealClock } from '../../src/time/real-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { SpinetIO } from '../../hal/johnny-five/spinet-io.js';
import type { PinLevel } from '../../boards/sim/index.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { BOARD_ADDRESS, createPeer, createSimNode, echo, sha256, testPattern, type SimNode, type StackNode } from '../bridge/sim-node.js';
import { boardReady, five, type FiveBoard } from './five.js';

const LED = 8;
const BUTTON = 7;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('johnny-five drives the simulated Uno’s spare pins while the network runs on the same link', () => {
  let node: SimNode;
  let peer: StackNode;
  let io: SpinetIO;
  let board: FiveBoard;

  beforeAll(async () => {
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    node = await createSimNode({ clock, lan, random: new SeededRandom(10) });
    peer = await createPeer(clock, lan);
    await startTcpService(node.net, 'echo', 7);
    io = new SpinetIO({ gpio: node.hal.gpio, clock, samplingInterval: 50 });
    board = new five.Board({ io, repl: false, debug: false, sigint: false });
    await boardReady(board);
  }, 60_000);

  afterAll(async () => {
    io?.close();
    await peer?.stack.stop();
    await node?.close();
  });

  it('blinks an LED: the emulated pin toggles while pings are answered and 32 KiB are echoed', async () => {
    const levels: PinLevel[] = [];
    const unsubscribe = node.board.pins.onChange((pin, level) => {
      if (pin === LED) levels.push(level);
    });
    const led = new five.Led({ pin: LED, board });
    led.blink(100);
    const data = testPattern(32 << 10, 5);
    const transfer = echo(peer.net, 7, BOARD_ADDRESS, data);
    const rtts: number[] = [];
    for (let i = 0; i < 5; i++) {
      // Generous: a ping reply queues behind the TCP segments the driver is still feeding the chip.
      rtts.push((await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 5_000 })).rttMs);
      await sleep(100);
    }
    const echoed = await transfer;
    led.stop().off();
    await sleep(200);
    unsubscribe();
    console.log(`LED levels seen on pin ${LED}: ${levels.join(' ')}; ping RTTs meanwhile ${rtts.map((r) => r.toFixed(1)).join(', ')} ms`);
    expect(sha256(echoed)).toBe(sha256(data));
    expect(levels.filter((l) => l === 'high').length).toBeGreaterThanOrEqual(2);
    expect(levels.filter((l) => l === 'low').length).toBeGreaterThanOrEqual(2);
    expect(node.board.pins.level(LED)).toBe('low');
  }, 60_000);

  it('reads a pulled-up button: pressing it (pin to ground) gives down, releasing it up', async () => {
    const button = new five.Button({ pin: BUTTON, isPullup: true, board });
    const events: string[] = [];
    button.on('down', () => events.push('down'));
    button.on('up', () => events.push('up'));
    await sleep(300);
    expect(node.board.pins.level(BUTTON)).toBe('input-pullup');
    node.board.pins.setInput(BUTTON, false);
    const reply = node.stack.ping('192.0.2.1', { timeoutMs: 5_000 });
    await sleep(300);
    node.board.pins.setInput(BUTTON, true);
    await sleep(300);
    await reply.catch(() => undefined);
    expect(events).toEqual(['down', 'up']);
    expect(await reply).toMatchObject({ from: '192.0.2.1' });
  }, 30_000);
});
