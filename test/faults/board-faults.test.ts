import { afterEach, describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/time/random.js';
import { EthernetRepr, EtherType } from '../../src/wire/ethernet.js';
import { parseMac } from '../../src/wire/address.js';
import { createDgram } from '../../src/socket/dgram.js';
import { BOARD_ADDRESS, echoThroughBoard, faultyBoard, pattern, type EchoResult, type FaultyBoard } from './board.js';

/**
 * Faults on the board path at stated rates, each under a 64 KiB TCP echo from a peer on the LAN
 * through the board (test/faults/board.ts): the echo must come back byte-exact while the faults
 * strike, at every rate up to where the link is unusable; at that rate the transfer may stall, but
 * once the faults stop the board answers ping and the next transfer is byte-exact. The figures
 * (simulated seconds per transfer at each rate) are printed, and kept in RELIABILITY.md.
 */
const KIB64 = 64 * 1024;
let b: FaultyBoard | undefined;
const figures: string[] = [];

afterEach(async () => {
  const violations = b?.violations ?? [];
  await b?.close();
  b = undefined;
  // The chip is strict: whatever fault struck, the driver and the sketch must not misuse it.
  expect(violations).toEqual([]);
});

/** After the faults: ping answers and another transfer is byte-exact. */
async function expectRecovered(board: FaultyBoard): Promise<void> {
  const pinged = await board.peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 5_000 });
  expect(pinged.from).toBe(BOARD_ADDRESS);
  const again = await echoThroughBoard(board, pattern(KIB64, 99), { limitMs: 60_000 });
  expect(again).toMatchObject({ ok: true, bytes: KIB64 });
  // Nothing the faults did reached the stack as an exception.
  expect(board.stack.containment.total).toBe(0);
}

function record(name: string, rate: number | string, result: EchoResult, note = ''): void {
  const line = `${name} ${rate}: ${result.ok ? `byte-exact in ${result.simulatedSeconds.toFixed(2)} s simulated` : `${result.error} after ${result.bytes} bytes`}${note}`;
  figures.push(line);
  console.log(line);
}

describe('the board path under faults at stated rates (64 KiB TCP echo each)', () => {
  const serial = [
    ['bit errors', 'corrupt', 11],
    ['lost bytes', 'drop', 21],
    ['inserted bytes', 'insert', 31],
  ] as const;

  for (const [name, kind, seed] of serial) {
    it.each([1e-5, 1e-4])(`serial ${name} at %s per byte both ways: byte-exact`, async (rate) => {
      b = await faultyBoard(3);
      b.link.setFaults('host-to-board', { [kind]: rate, random: new SeededRandom(seed) });
      b.link.setFaults('board-to-host', { [kind]: rate, random: new SeededRandom(seed + 1) });
      const result = await echoThroughBoard(b, pattern(KIB64, 1), { limitMs: 120_000 });
      record(`serial ${name}`, rate, result);
      expect(result).toMatchObject({ ok: true, bytes: KIB64 });
      b.link.setFaults('host-to-board', undefined);
      b.link.setFaults('board-to-host', undefined);
      await expectRecovered(b);
    });
  }

  it('the baseline: no faults', async () => {
    b = await faultyBoard(3);
    const result = await echoThroughBoard(b, pattern(KIB64, 1), { limitMs: 60_000 });
    record('no faults', '-', result);
    expect(result).toMatchObject({ ok: true, bytes: KIB64 });
  });

  it.each([3e-4, 1e-3])('serial bit errors at %s per byte: where the link stops being usable; once they stop the board recovers', async (rate) => {
    b = await faultyBoard(3);
    b.link.setFaults('host-to-board', { corrupt: rate, random: new SeededRandom(11) });
    b.link.setFaults('board-to-host', { corrupt: rate, random: new SeededRandom(12) });
    const result = await echoThroughBoard(b, pattern(KIB64, 1), { limitMs: 20_000 });
    record('serial bit errors', rate, result);
    // Byte-exact or not at all: a transfer that gets through is the data sent.
    if (result.bytes >= KIB64) expect(result.ok).toBe(true);
    b.link.setFaults('host-to-board', undefined);
    b.link.setFaults('board-to-host', undefined);
    await expectRecovered(b);
  });

  it.each([1e-5, 1e-4])('SPI read errors at %s per byte read: byte-exact', async (rate) => {
    b = await faultyBoard(4);
    b.spi.readErrorRate = rate;
    const result = await echoThroughBoard(b, pattern(KIB64, 2), { limitMs: 120_000 });
    record('SPI read errors', rate, result, ` (${b.spi.stats.corrupted} bytes corrupted, ${b.nic.stats().drops['rx-bad-fcs'] ?? 0} frames dropped for their FCS)`);
    expect(result).toMatchObject({ ok: true, bytes: KIB64 });
    expect(b.spi.stats.corrupted).toBeGreaterThan(0);
    b.spi.readErrorRate = 0;
    await expectRecovered(b);
  });

  const midTransfer: [string, (board: FaultyBoard) => void][] = [
    ['a board reset', (board) => board.board.reboot()],
    ['the port unplugged (board powered off) for 300 ms', (board) => {
      board.link.vanish({ powerOff: true });
      board.clock.schedule(300, () => {
        board.board.open();
        board.link.reappear();
      });
    }],
    ['a chip reset (RESET pin)', (board) => board.chip.hardReset()],
    ['the Ethernet link down for 500 ms', (board) => {
      board.chip.setLinkUp(false);
      board.clock.schedule(500, () => board.chip.setLinkUp(true));
    }],
    ['a flood of 200 full-size frames that overflows the receive ring', (board) => flood(board, 200)],
  ];

  it.each(midTransfer)('%s in the middle of the transfer: byte-exact, then recovered', async (_name, strike) => {
    b = await faultyBoard(5);
    const board = b;
    let struck = false;
    const result = await echoThroughBoard(board, pattern(KIB64, 3), {
      limitMs: 120_000,
      during: (received) => {
        if (!struck && received >= KIB64 / 3) {
          struck = true;
          strike(board);
        }
      },
    });
    record(_name, 'once', result);
    expect(struck).toBe(true);
    expect(result).toMatchObject({ ok: true, bytes: KIB64 });
    await expectRecovered(board);
  });

  it('prints the figures', () => {
    console.log(`board-path faults:\n  ${figures.join('\n  ')}`);
    expect(figures.length).toBeGreaterThan(0);
  });
});

/** Frames to the board's MAC at LAN speed, from a station that says nothing else. */
function flood(board: FaultyBoard, count: number): void {
  const port = board.lan.plug({ label: 'flooder', deliver: () => undefined });
  const frame = new Uint8Array(1514);
  EthernetRepr.emit({ destination: parseMac('02:5e:00:00:00:0a'), source: parseMac('02:66:00:00:00:01'), etherType: EtherType.IPV4 }, frame);
  for (let i = 0; i < count; i++) port.send(frame);
}

describe('the FCS of each received frame, read over SPI and checked by the driver', () => {
  /**
   * Two bit flips on SPI that cancel in the internet checksum: the high byte of one 16-bit word
   * goes up by one where the high byte of the next word but one goes down by one. The payload
   * marks where: AB CD, then 00 00 01 01.
   */
  function cancellingFlips(): (miso: number) => number {
    let previous = [0, 0];
    let k = -1;
    let done = false;
    return (miso) => {
      let out = miso;
      if (k < 0 && !done && previous[0] === 0xab && previous[1] === 0xcd) k = 0;
      if (k === 0 && miso === 0x00) out = 0x01;
      if (k === 2 && miso === 0x01) {
        out = 0x00;
        done = true;
      }
      if (k >= 0) k = k === 2 ? -1 : k + 1;
      previous = [previous[1]!, miso];
      return out;
    };
  }

  it('a frame whose payload was changed on SPI so that its UDP checksum still holds is a counted drop, not data', async () => {
    b = await faultyBoard(6);
    const received: number[][] = [];
    const socket = createDgram(b.stack.udp).createSocket();
    socket.on('message', (m: Buffer) => received.push([...m.subarray(0, 6)]));
    socket.bind(5000);
    const sender = createDgram(b.peer.stack.udp).createSocket();
    const payload = Uint8Array.of(0xab, 0xcd, 0x00, 0x00, 0x01, 0x01, ...new Uint8Array(40));
    // Warm ARP on both sides, then corrupt the next datagram on its way out of the chip.
    await b.peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 2_000 });
    b.spi.tamper = cancellingFlips();
    sender.send(payload, 5000, BOARD_ADDRESS);
    await waitVirtual(b, 200);
    b.spi.tamper = undefined;
    expect(received).toEqual([]);
    expect(b.nic.stats().drops['rx-bad-fcs']).toBe(1);
    sender.send(payload, 5000, BOARD_ADDRESS);
    await waitVirtual(b, 200);
    expect(received).toEqual([[0xab, 0xcd, 0x00, 0x00, 0x01, 0x01]]);
  });
});

/** Let `ms` of virtual time pass (the harness drives the clock as fast as the event loop turns). */
async function waitVirtual(board: FaultyBoard, ms: number): Promise<void> {
  const end = board.clock.now() + ms;
  while (board.clock.now() < end) await new Promise<void>((resolve) => setImmediate(resolve));
}
