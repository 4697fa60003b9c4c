/**
 * The sketch's UART at 2 Mbaud under the chip's interrupt timing (boards/sim/avr-timing.ts: 4-cycle
 * interrupt response, one instruction after reti), its overrun and framing-error counts (STATS),
 * the credit it gives back for a byte the UART lost, and the rates SET_BAUD takes.
 *
 * SPINET_SKETCH_HEX=<hex> runs the first test against another build (one from before the naked INT
 * ISR, to see it overrun).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { BoardFrame, Command, HostFrame, Status, StatsCounter, crc16, encodeCommand, encodeFrame, encodeSetBaud } from '../../hal/bridge/protocol.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { RawHost } from './raw-host.js';

let board: SimulatedBoard | undefined;
let hal: BridgeHal | undefined;

afterEach(async () => {
  await hal?.close();
  await board?.stop();
  board = hal = undefined;
});

const hexPath = process.env.SPINET_SKETCH_HEX;

async function rawBoard() {
  const clock = new VirtualClock();
  board = await createSimulatedBoard({ board: 'uno', clock, chip: new SpiMemoryChip(), linkModel: 'ideal' });
  const host = new RawHost(board, clock);
  await host.until(() => host.frames.find((f) => f.type === BoardFrame.HELLO));
  await host.hello();
  return { clock, host, board };
}

describe('bridge sketch: the UART at 2 Mbaud', () => {
  it('takes a stream of full-credit writes while INT changes every 12 µs without losing a byte', async () => {
    const clock = new VirtualClock();
    const chip = new SpiMemoryChip();
    board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: 'ideal', ...(hexPath ? { hexPath } : {}) });
    hal = await board.openHal({ retransmitMs: 50 });
    await hal.setBaud(2_000_000);
    // The board switches two character times after its DONE; the ideal link has no USB frame (1 ms)
    // to cover that, so wait one before sending at the new rate.
    await hal.delay(1);
    // An INT storm: the external interrupt fires every 12 µs (≈ 2.4 characters), so it meets the
    // UART's receive ISR back to back again and again.
    let level = false;
    let storming = true;
    const toggle = () => {
      if (!storming) return;
      level = !level;
      chip.setInterrupt(level);
      clock.schedule(0.012, toggle);
    };
    toggle();
    const blocks = Array.from({ length: 12 }, (_, k) => Uint8Array.from({ length: 400 }, (_, i) => (k * 17 + i) & 0xff));
    await Promise.all(blocks.map((block) => hal!.spi.transfer([{ write: Uint8Array.of(0x55, ...block) }])));
    storming = false;
    expect(board.mcu.uartOverruns).toBe(0);
    expect(hal.stats.naks).toBe(0);
    expect(hal.stats.retransmittedFrames).toBe(0);
  });
});

describe('bridge sketch: line statistics and credit', () => {
  it('counts a byte the UART lost (DOR), gives its credit back, and the host resends the frame', async () => {
    const { host, board } = await rawBoard();
    expect((await host.request(1, encodeCommand(Command.STATS, 1, StatsCounter.RX_OVERRUNS))).value).toBe(0);
    // The next DATA frame loses a byte inside the UART: its CRC fails, the board NAKs it.
    const sentBefore = board.link.stats.hostToBoardBytes;
    board.mcu.loseReceivedBytes(1);
    const from = host.frames.length;
    host.send(encodeCommand(Command.PING, 2));
    await host.until(() => host.frames.slice(from).find((f) => f.type === BoardFrame.NAK));
    await host.wait(1);
    // Every byte the host put on the line is accounted for, the lost one too: no credit leaks.
    const last = host.frames[host.frames.length - 1]!;
    expect(last.consumed).toBe(board.link.stats.hostToBoardBytes & 0xffff);
    expect(board.link.stats.hostToBoardBytes).toBeGreaterThan(sentBefore);
    // The lost frame's command never ran; after a HELLO the counters tell what happened.
    expect(host.answers(2, from)).toEqual([]);
    await host.hello();
    expect((await host.request(3, encodeCommand(Command.STATS, 3, StatsCounter.RX_OVERRUNS))).value).toBe(1);
    expect((await host.request(4, encodeCommand(Command.STATS, 4, StatsCounter.RX_FRAME_ERRORS))).value).toBe(0);
    expect((await host.request(5, encodeCommand(Command.STATS, 5, 2))).status).toBe(Status.EINVAL);
  });

  it('runs its receive interrupt once per byte from the host, and the simulator counts its cycles', async () => {
    const { host, board } = await rawBoard();
    expect((await host.request(1, encodeCommand(Command.PING, 1))).status).toBe(Status.OK);
    // The USART receive vector (the 328P's vector 18, at word 0x24): one handler run per byte.
    const receive = board.mcu.interruptHandlers.get(0x24)!;
    expect(receive.count).toBe(board.link.stats.hostToBoardBytes);
    // Each run costs at least the response and the vector's jump (4 + 3 cycles) and a reti (4).
    expect(receive.cycles).toBeGreaterThan(11 * receive.count);
  });

  it('drops a DATA frame longer than 64 payload bytes whole, NAKs it, and runs the same seq when it comes again', async () => {
    const { host } = await rawBoard();
    for (const [seq, extra] of [[0, 1], [1, 40]] as const) {
      // DATA `seq` (the next the board expects) with 64 + `extra` payload bytes, zeros among them
      // (COBS code bytes): a PING, then bytes that would stall the stream as a bad command if they ran.
      const from = host.frames.length;
      const payload = Uint8Array.from({ length: 64 + extra }, (_, i) => (i % 5 === 0 ? 0 : (i * 37) & 0xff));
      payload.set(encodeCommand(Command.PING, 1));
      const body = new Uint8Array(2 + payload.length + 2);
      body.set([HostFrame.DATA, seq]);
      body.set(payload, 2);
      const crc = crc16(body, 0, body.length - 2);
      body.set([crc & 0xff, crc >>> 8], body.length - 2);
      host.board.link.hostWrite(encodeFrame(body));
      await host.until(() => host.frames.slice(from).find((f) => f.type === BoardFrame.NAK));
      await host.wait(1);
      expect(host.answers(1, from)).toEqual([]);
      expect(host.answers(0xff, from)).toEqual([]);
      // The stream goes on from the same seq with a frame that fits.
      expect((await host.request(2, encodeCommand(Command.PING, 2))).status).toBe(Status.OK);
    }
  });

  it('refuses a rate more than 2 % off what its UBRR can make, and takes the exact ones', async () => {
    const { host, board } = await rawBoard();
    // 460800 → UBRR 3 = 500000 (+8.5 %); 1.5 M → UBRR 0 = 2 M (+33 %); 230400 → 222222 (−3.5 %).
    for (const [id, baud] of [[1, 460_800], [2, 1_500_000], [3, 230_400], [4, 3_000_000]] as const) {
      expect((await host.request(id, encodeSetBaud(id, baud))).status, `${baud}`).toBe(Status.EINVAL);
      expect(board.mcu.baudRate).toBe(1_000_000);
    }
    // 250000 (UBRR 7) is exact: accepted, and the board switches.
    expect((await host.request(5, encodeSetBaud(5, 250_000))).status).toBe(Status.OK);
    await host.wait(1);
    expect(board.mcu.baudRate).toBe(250_000);
  });
});
