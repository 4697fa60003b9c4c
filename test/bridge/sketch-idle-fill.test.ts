/**
 * Idle fill (SET_FILL, caps bit 10, docs/bridge-protocol.md §2 and §3) and the report before a
 * HELLO answer, in the sketch itself: the committed hex in avr8js on an `ideal` link, so every
 * byte the board sends is seen as it leaves the UART — frames and the zeros between them.
 *
 * SPINET_SKETCH_HEX=path runs the suite against another hex (one without idle fill fails it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import {
  BoardFrame,
  Capability,
  Command,
  EventKind,
  FrameDecoder,
  Status,
  encodeCommand,
  encodeHostHello,
  encodeSetFill,
  parseBoardFrame,
  type BoardFrameView,
} from '../../hal/bridge/protocol.js';
import { createSimulatedBoard, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { RawHost } from './raw-host.js';

const hexPath = process.env.SPINET_SKETCH_HEX;

let board: SimulatedBoard | undefined;

afterEach(async () => {
  await board?.stop();
  board = undefined;
});

async function boot(): Promise<{ host: RawHost; chip: SpiMemoryChip }> {
  const chip = new SpiMemoryChip();
  const clock = new VirtualClock();
  board = await createSimulatedBoard({ board: 'uno', clock, chip, linkModel: 'ideal', resetOnOpen: false, ...(hexPath ? { hexPath } : {}) });
  const host = new RawHost(board, clock);
  await host.until(() => host.frames.find((f) => f.type === BoardFrame.HELLO));
  await host.hello();
  return { host, chip };
}

/** A frame on the wire and the zeros that followed its delimiter. */
interface FilledFrame {
  readonly type: number;
  readonly id: number;
  readonly fill: number;
}

/** Cut `wire` into frames, each with the idle zeros after it (a frame's own delimiter not counted). */
function framesWithFill(wire: readonly number[]): FilledFrame[] {
  const out: { frame: BoardFrameView; fill: number }[] = [];
  const decoder = new FrameDecoder((body) => out.push({ frame: parseBoardFrame(body)!, fill: 0 }));
  let inFrame = false;
  for (const b of wire) {
    if (b !== 0) inFrame = true;
    else if (!inFrame && out.length > 0) out.at(-1)!.fill++;
    else inFrame = false;
    decoder.push(Uint8Array.of(b));
  }
  return out.map(({ frame, fill }) => ({ type: frame.type, id: frame.id, fill }));
}

const ping = (id: number) => encodeCommand(Command.PING, id);
const done = (id: number, fill: number): FilledFrame => ({ type: BoardFrame.DONE, id, fill });
/** One character at 1 Mbaud (10 bits). */
const CHARACTER_MS = 0.01;
/** Line time of `bytes` at 1 Mbaud in avr8js (≈1.5 character times a byte), with room to spare. */
const lineMs = (bytes: number) => (bytes * 20) / 1000;

describe('bridge sketch: idle fill (SET_FILL)', () => {
  it('advertises idle fill (caps bit 10)', async () => {
    const { host } = await boot();
    const hello = await host.hello();
    expect(hello.capabilities & Capability.IDLE_FILL).toBe(Capability.IDLE_FILL);
  });

  it('given SET_FILL n, answers with value n, and every reply is followed by exactly n zeros while the board is idle', async () => {
    const { host } = await boot();
    const from = host.wire.length;
    expect(await host.request(1, encodeSetFill(1, 40))).toEqual({ data: [], status: Status.OK, value: 40 });
    await host.wait(lineMs(40) + 1);
    await host.request(2, ping(2));
    await host.wait(lineMs(40) + 1);
    expect(framesWithFill(host.wire.slice(from))).toEqual([done(1, 40), done(2, 40)]);
    expect(host.badFrames).toBe(0);
  });

  it('given a frame due while it fills (an INT event, then a reply), the fill gives way at once, restarts after that frame, and no frame is damaged', async () => {
    const { host, chip } = await boot();
    const from = host.wire.length;
    await host.request(1, encodeSetFill(1, 200));
    await host.wait(0.5);
    chip.setInterrupt(true);
    await host.until(() => host.intEvents(0).at(-1)?.payload[1] === 1);
    await host.wait(0.5);
    const reply = host.request(2, ping(2));
    await reply;
    await host.wait(lineMs(200) + 1);
    const seen = framesWithFill(host.wire.slice(from));
    // One INT event, or two when the edge lands between the sketch's reads of the edge count and
    // of the level (the level first, then the count: each a change worth an event, §3).
    const events = seen.filter((f) => f.type === BoardFrame.EVENT).length;
    expect(events).toBeGreaterThanOrEqual(1);
    expect(events).toBeLessThanOrEqual(2);
    expect(seen.map(({ type, id }) => [type, id])).toEqual([
      [BoardFrame.DONE, 1],
      ...Array.from({ length: events }, () => [BoardFrame.EVENT, expect.any(Number)]),
      [BoardFrame.DONE, 2],
    ]);
    // Cut short twice: by the event, then by the reply; the last reply is idle and gets all 200.
    expect(seen[0]!.fill).toBeGreaterThan(0);
    expect(seen[0]!.fill).toBeLessThan(200);
    expect(seen.at(-2)!.fill).toBeGreaterThan(0);
    expect(seen.at(-2)!.fill).toBeLessThan(200);
    expect(seen.at(-1)!.fill).toBe(200);
    expect(host.badFrames).toBe(0);
    expect(host.intEvents(0).at(-1)!.payload[0]).toBe(EventKind.INT);
    expect(await host.request(3, ping(3))).toMatchObject({ status: Status.OK });
  });

  it('given a frame due while it fills, the frame waits no longer than the UART takes to send the zeros it holds', async () => {
    // From INT asserted to the event's first byte on the line, at phases across a character time,
    // without and with a fill running; measured on the CPU's clock (the virtual clock moves a
    // slice at a time). The UART holds at most two zeros: the one shifting out and one in UDR.
    const worst: number[] = [];
    for (const fill of [0, 200]) {
      const { host, chip } = await boot();
      await host.request(1, encodeSetFill(1, fill));
      let latest = 0;
      for (let phase = 0; phase < 12; phase++) {
        await host.wait(0.5 + phase * 0.0025);
        let firstByteAt: number | undefined;
        const off = board!.link.onHostData((bytes) => {
          if (firstByteAt === undefined && bytes.some((b) => b !== 0)) firstByteAt = board!.mcu.uptimeMs;
        });
        const assertedAt = board!.mcu.uptimeMs;
        chip.setInterrupt(phase % 2 === 0);
        await host.until(() => firstByteAt);
        off();
        latest = Math.max(latest, firstByteAt! - assertedAt);
      }
      worst.push(latest);
      await board!.stop();
      board = undefined;
    }
    expect(worst[1]! - worst[0]!).toBeLessThanOrEqual(2 * CHARACTER_MS);
  });

  it('given SET_FILL 0, sends no zeros after its replies', async () => {
    const { host } = await boot();
    await host.request(1, encodeSetFill(1, 40));
    await host.wait(lineMs(40) + 1);
    const from = host.wire.length;
    expect(await host.request(2, encodeSetFill(2, 0))).toMatchObject({ status: Status.OK, value: 0 });
    await host.request(3, ping(3));
    await host.wait(lineMs(40) + 1);
    expect(framesWithFill(host.wire.slice(from))).toEqual([done(2, 0), done(3, 0)]);
  });

  it('given HELLO, turns the fill off: its answer and the replies after it come without zeros', async () => {
    const { host } = await boot();
    await host.request(1, encodeSetFill(1, 40));
    await host.wait(lineMs(40) + 1);
    const from = host.wire.length;
    await host.hello();
    await host.request(2, ping(2));
    await host.wait(lineMs(40) + 1);
    expect(framesWithFill(host.wire.slice(from))).toEqual([
      { type: BoardFrame.ACK, id: 0, fill: 0 },
      { type: BoardFrame.HELLO, id: 0, fill: 0 },
      done(2, 0),
    ]);
  });
});

describe('bridge sketch: the report before a HELLO answer', () => {
  it('given HELLO with everything already reported, it still sends an ACK first, with the old stream\'s ack and every byte consumed', async () => {
    const { host } = await boot();
    await host.request(1, ping(1));
    await host.wait(1);
    const lastReport = host.frames.at(-1)!;
    const from = host.frames.length;
    host.board.link.hostWrite(encodeHostHello(0x99));
    await host.until(() => host.frames.slice(from).find((f) => f.type === BoardFrame.HELLO));
    const [ack, hello] = host.frames.slice(from);
    expect(ack).toMatchObject({ type: BoardFrame.ACK, ack: lastReport.ack, consumed: (lastReport.consumed + encodeHostHello(0x99).length) & 0xffff });
    expect(hello).toMatchObject({ type: BoardFrame.HELLO, ack: 0x99 });
  });
});
