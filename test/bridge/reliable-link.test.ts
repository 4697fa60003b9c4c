/**
 * The reliable link alone (hal/bridge/reliable-link.ts; docs/bridge-protocol.md §4, §5), over a
 * fake byte pipe: what the link writes is cut into wire frames, which a test may drop or corrupt,
 * and read by a small board that keeps the sketch's receiver rules — a receive ring of `window`
 * bytes, a frame acted on only if its CRC is good and its seq the expected one, one NAK per gap,
 * duplicates dropped and acknowledged — and answers with ACK and NAK frames through the same kind
 * of pipe back. No session, no requests: bytes in, the same bytes executed once, in order.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { MAX_FRAMES_IN_FLIGHT, ReliableLink } from '../../hal/bridge/reliable-link.js';
import {
  BoardFrame,
  FRAME_DELIMITER,
  FrameDecoder,
  HostFrame,
  MAX_PAYLOAD,
  encodeBoardFrame,
  parseBoardFrame,
  parseHostFrame,
} from '../../hal/bridge/protocol.js';

const RETRANSMIT_MS = 150;
const RETRANSMIT_LIMIT = 6;

/** Wire frames in `bytes` (each ends with its delimiter). */
function splitFrames(bytes: Uint8Array): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === FRAME_DELIMITER) {
      frames.push(bytes.slice(start, i + 1));
      start = i + 1;
    }
  }
  return frames;
}

/** The sketch's receiver (§4, §5) over a ring of `window` bytes it empties when told to. */
class FakeBoard {
  /** The command stream as executed: in-order payloads of good frames. */
  readonly executed: number[] = [];
  /** Seqs of the DATA frames it acted on, in order. */
  readonly seqs: number[] = [];
  readonly payloadLengths: number[] = [];
  /** Board → host wire frames not yet delivered. */
  readonly toHost: Uint8Array[] = [];
  /** Most wire bytes ever waiting in the ring. */
  mostInRing = 0;
  naks = 0;
  private ring: Uint8Array[] = [];
  private inRing = 0;
  private expected: number;
  private consumed: number;
  private nakSent = false;
  private readonly decoder = new FrameDecoder(
    (body) => this.onFrame(body),
    () => this.nak(),
  );

  constructor(
    readonly window: number,
    origin: { ack: number; consumed: number },
  ) {
    this.expected = origin.ack;
    this.consumed = origin.consumed;
  }

  /** Bytes arrive in the ring (the UART interrupt); they must fit. */
  arrive(wire: Uint8Array): void {
    this.inRing += wire.length;
    if (this.inRing > this.window) throw new Error(`ring overflow: ${this.inRing} bytes in a ${this.window}-byte ring`);
    this.mostInRing = Math.max(this.mostInRing, this.inRing);
    this.ring.push(wire);
  }

  /** The main loop takes everything out of the ring, acts on it and reports (ACK). */
  consumeAll(): void {
    if (this.inRing === 0) return;
    const ring = this.ring;
    this.ring = [];
    for (const wire of ring) {
      this.consumed = (this.consumed + wire.length) & 0xffff;
      this.inRing -= wire.length;
      this.decoder.push(wire);
    }
    this.report(BoardFrame.ACK);
  }

  private onFrame(body: Uint8Array): void {
    const frame = parseHostFrame(body);
    if (!frame || frame.type !== HostFrame.DATA) return this.nak();
    if (frame.seq !== this.expected) {
      // Already received (a resend): dropped and acknowledged; ahead of a gap: NAK.
      if (((this.expected - frame.seq) & 0xff) < 128) this.report(BoardFrame.ACK);
      else this.nak();
      return;
    }
    this.expected = (this.expected + 1) & 0xff;
    this.nakSent = false;
    this.seqs.push(frame.seq);
    this.payloadLengths.push(frame.payload.length);
    this.executed.push(...frame.payload);
  }

  private nak(): void {
    if (this.nakSent) return;
    this.nakSent = true;
    this.naks++;
    this.report(BoardFrame.NAK);
  }

  private report(type: number): void {
    this.toHost.push(encodeBoardFrame(type, { intAsserted: false, id: 0, ack: this.expected, consumed: this.consumed }));
  }
}

interface PipeOptions {
  readonly window?: number;
  /** The HELLO answer's ack and consumed: where both ends start. */
  readonly ack?: number;
  readonly consumed?: number;
  readonly boardBusyMs?: () => number;
}

/** A link and a fake board joined by two pipes a test can fault. */
function pipe(options: PipeOptions = {}) {
  const clock = new VirtualClock();
  const origin = { ack: options.ack ?? 0, consumed: options.consumed ?? 0 };
  const window = options.window ?? 1000;
  const board = new FakeBoard(window, origin);
  /** Host → board wire frames, in the order written, before any fault. */
  const written: Uint8Array[] = [];
  let stalls = 0;
  /** Return false to lose a host → board frame (its index in `written`). */
  let hostToBoard: (frame: Uint8Array, index: number) => boolean = () => true;
  /** Return false to lose a board → host frame. */
  let boardToHost: (frame: Uint8Array) => boolean = () => true;
  const inFlight: Uint8Array[] = [];
  const link = new ReliableLink({
    clock,
    write: (wire) => {
      for (const frame of splitFrames(wire)) {
        if (hostToBoard(frame, written.length)) inFlight.push(frame);
        written.push(frame);
      }
    },
    retransmitMs: RETRANSMIT_MS,
    retransmitLimit: RETRANSMIT_LIMIT,
    onStalled: () => stalls++,
    boardBusyMs: options.boardBusyMs,
  });
  const hostDecoder = new FrameDecoder((body) => link.receive(parseBoardFrame(body)!), undefined, undefined, { endedFrames: true });
  link.start(origin.ack, origin.consumed, window);

  /** Bytes on the wire reach the other end; the board consumes its ring when `consume`. */
  function deliver(consume = true): void {
    for (;;) {
      for (const frame of inFlight.splice(0)) board.arrive(frame);
      if (consume) board.consumeAll();
      if (board.toHost.length === 0) return;
      for (const frame of board.toHost.splice(0)) if (boardToHost(frame)) hostDecoder.push(frame);
    }
  }

  return {
    clock,
    link,
    board,
    written,
    stalls: () => stalls,
    deliver,
    loseHostToBoard(lose: (frame: Uint8Array, index: number) => boolean) {
      hostToBoard = (frame, index) => !lose(frame, index);
    },
    loseBoardToHost(lose: (frame: Uint8Array) => boolean) {
      boardToHost = (frame) => !lose(frame);
    },
  };
}

/** `n` command-stream bytes that show their position. */
const stream = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
const isNak = (frame: Uint8Array) => {
  let found = false;
  new FrameDecoder((body) => (found = parseBoardFrame(body)!.type === BoardFrame.NAK)).push(frame);
  return found;
};

describe('reliable link: host → board command stream over a fake byte pipe', () => {
  it('delivers the stream in order, in DATA frames of at most 64 bytes numbered from the HELLO answer’s ack and wrapping at 256', () => {
    const p = pipe({ ack: 250 });
    const bytes = stream(1000);
    p.link.append(bytes.subarray(0, 300));
    p.link.append(bytes.subarray(300));
    p.link.flush();
    p.deliver();
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.board.seqs).toEqual(Array.from({ length: 16 }, (_, i) => (250 + i) & 0xff));
    expect(Math.max(...p.board.payloadLengths)).toBe(MAX_PAYLOAD);
    expect(p.link.acknowledged).toBe(266);
    expect(p.link.stats).toMatchObject({ framesSent: 16, retransmittedFrames: 0, naks: 0 });
  });

  it('cuts a frame only when full or flushed: bytes appended in one turn share frames', () => {
    const p = pipe();
    for (let i = 0; i < 10; i++) p.link.append(stream(5));
    expect(p.written).toHaveLength(0);
    p.link.flush();
    p.deliver();
    expect(p.board.payloadLengths).toEqual([50]);
    expect(p.link.nextFrame).toBe(1);
  });

  it('never has more bytes outstanding than the board’s window: the rest waits for the credit the board returns', () => {
    const p = pipe({ window: 200 });
    const bytes = stream(3000);
    p.link.append(bytes);
    p.link.flush();
    p.deliver(false);
    // Three 70-byte frames do not fit in 200 bytes; two do.
    expect(p.written).toHaveLength(2);
    p.board.consumeAll();
    p.deliver();
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.board.mostInRing).toBeLessThanOrEqual(200);
    expect(p.link.stats.peakCreditUsed).toBeLessThanOrEqual(200);
    expect(p.link.stats.peakCreditUsed).toBeGreaterThan(100);
  });

  it('counts credit from the HELLO answer’s consumed count, across the 16-bit wrap', () => {
    const p = pipe({ window: 300, consumed: 0xffff - 100 });
    const bytes = stream(5000);
    p.link.append(bytes);
    p.link.flush();
    p.deliver();
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.link.stats.peakCreditUsed).toBeLessThanOrEqual(300);
  });

  it('keeps at most 127 frames unacknowledged, whatever the credit: an 8-bit seq must tell a resend from a new frame', () => {
    const p = pipe({ window: 60_000 });
    p.link.append(stream(200 * MAX_PAYLOAD));
    p.link.flush();
    p.deliver(false);
    expect(p.written).toHaveLength(MAX_FRAMES_IN_FLIGHT);
    p.deliver();
    expect(p.board.seqs).toHaveLength(200);
  });

  it('given a lost DATA frame, the board’s NAK makes it resend from the first frame not acknowledged, and the board executes the stream once, in order', () => {
    const p = pipe();
    p.loseHostToBoard((_, index) => index === 2);
    const bytes = stream(8 * MAX_PAYLOAD);
    p.link.append(bytes);
    p.link.flush();
    p.deliver();
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.board.naks).toBe(1);
    expect(p.link.stats.naks).toBe(1);
    // Go-back-N: frames 2..7 again, no time passed.
    expect(p.link.stats.retransmittedFrames).toBe(6);
    expect(p.clock.now()).toBe(0);
  });

  it('given a corrupted DATA frame, nothing of it is executed: the CRC fails, the board NAKs and the frame comes again', () => {
    const p = pipe();
    let corrupted = false;
    p.loseHostToBoard((frame, index) => {
      if (index === 1) {
        corrupted = true;
        // A data byte, never 0x00 (that would cut the frame in two instead).
        frame[10] = frame[10] === 0x55 ? 0x56 : 0x55;
      }
      return false;
    });
    const bytes = stream(3 * MAX_PAYLOAD);
    p.link.append(bytes);
    p.link.flush();
    p.deliver();
    expect(corrupted).toBe(true);
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.board.naks).toBe(1);
  });

  it('given a lost DATA frame and a lost NAK, it resends after retransmitMs without ack progress', () => {
    const p = pipe();
    p.loseHostToBoard((_, index) => index === 0);
    p.loseBoardToHost(isNak);
    const bytes = stream(3 * MAX_PAYLOAD);
    p.link.append(bytes);
    p.link.flush();
    p.deliver();
    expect(p.board.executed).toEqual([]);
    p.clock.advance(RETRANSMIT_MS - 1);
    p.deliver();
    expect(p.board.executed).toEqual([]);
    p.clock.advance(1);
    p.deliver();
    expect(p.board.executed).toEqual([...bytes]);
    expect(p.link.stats.retransmittedFrames).toBe(3);
  });

  it('waits the board’s known busy time on top of retransmitMs before it resends (the board acks only after executing)', () => {
    const p = pipe({ boardBusyMs: () => 500 });
    p.link.append(stream(10));
    p.link.flush();
    p.deliver(false); // in the ring, not executed: no ack yet
    p.clock.advance(RETRANSMIT_MS + 499);
    expect(p.written).toHaveLength(1);
    p.clock.advance(1);
    expect(p.written).toHaveLength(2);
  });

  it('given a board that takes nothing, it resends retransmitLimit times and then gives up (onStalled), once', () => {
    const p = pipe();
    p.loseHostToBoard(() => true);
    p.link.append(stream(2 * MAX_PAYLOAD));
    p.link.flush();
    p.clock.advance(RETRANSMIT_MS * RETRANSMIT_LIMIT);
    expect(p.stalls()).toBe(0);
    expect(p.link.stats.retransmittedFrames).toBe(2 * RETRANSMIT_LIMIT);
    p.clock.advance(RETRANSMIT_MS * 10);
    expect(p.stalls()).toBe(1);
    expect(p.written).toHaveLength(2 * (RETRANSMIT_LIMIT + 1));
  });

  it('ignores an ack outside what it has sent: an ack it cannot have earned releases nothing', () => {
    const p = pipe();
    p.link.append(stream(3 * MAX_PAYLOAD));
    p.link.flush();
    expect(p.link.transmittedFrames).toBe(3);
    expect([0, 1, 2, 3].map((ack) => p.link.couldAck(ack))).toEqual([true, true, true, true]);
    expect(p.link.couldAck(4)).toBe(false);
    expect(p.link.couldAck(255)).toBe(false);
    p.link.receive({ type: BoardFrame.ACK, ack: 100, consumed: 0 });
    expect(p.link.acknowledged).toBe(0);
    p.link.receive({ type: BoardFrame.ACK, ack: 2, consumed: 0 });
    expect(p.link.acknowledged).toBe(2);
    expect(p.link.couldAck(1)).toBe(false);
  });

  it('after stop() writes nothing and does not resend; start() begins a fresh stream at the new origin without the old frames', () => {
    const p = pipe();
    p.loseHostToBoard(() => true);
    p.link.append(stream(MAX_PAYLOAD));
    p.link.flush();
    p.link.stop();
    p.link.append(stream(10));
    p.link.flush();
    p.clock.advance(RETRANSMIT_MS * 20);
    expect(p.written).toHaveLength(1);
    expect(p.stalls()).toBe(0);
    p.link.start(40, 0, 1000);
    p.link.append(stream(3));
    p.link.flush();
    expect(p.written).toHaveLength(2);
    expect(parseHostFrameOf(p.written[1]!)).toMatchObject({ seq: 40, payload: stream(3) });
  });

  it('after discard() resends nothing of what it held: those requests failed', () => {
    const p = pipe();
    p.loseHostToBoard(() => true);
    p.link.append(stream(2 * MAX_PAYLOAD));
    p.link.flush();
    p.link.discard();
    p.clock.advance(RETRANSMIT_MS * 20);
    expect(p.written).toHaveLength(2);
    expect(p.link.acknowledged).toBe(2);
    expect(p.link.nextFrame).toBe(2);
  });
});

function parseHostFrameOf(wire: Uint8Array) {
  let frame: ReturnType<typeof parseHostFrame>;
  new FrameDecoder((body) => (frame = parseHostFrame(body))).push(wire);
  return frame;
}
