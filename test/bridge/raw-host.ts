/**
 * The host side of a bridge session at the frame level, for tests that drive a simulated board
 * (the real sketch in avr8js) without BridgeHal in between: what is checked is exactly what the
 * board sends.
 */
import type { VirtualClock } from '../../src/time/virtual-clock.js';
import {
  BoardFrame,
  EventKind,
  FrameDecoder,
  MAX_PAYLOAD,
  encodeHostData,
  encodeHostHello,
  parseBoardFrame,
  parseDone,
  parseHello,
  type BoardFrameView,
  type Hello,
} from '../../hal/bridge/protocol.js';
import type { SimulatedBoard } from '../../boards/sim/index.js';

/** One answer as the board streams it: DATA frames under an id, then that id's DONE. */
export interface Answer {
  readonly data: number[];
  readonly status: number;
  readonly value: number;
}

/**
 * The host side at the frame level: DATA frames with consecutive seqs, HELLO, and every frame the
 * board sends, decoded, in order. Waits run on the board's virtual clock.
 */
export class RawHost {
  readonly frames: BoardFrameView[] = [];
  /** Every byte the board sent, as the host received it (frames and idle fill). */
  readonly wire: number[] = [];
  /** Frames that failed COBS, length or CRC. */
  badFrames = 0;
  private seq = 0;

  constructor(
    readonly board: SimulatedBoard,
    readonly clock: VirtualClock,
  ) {
    const decoder = new FrameDecoder(
      (body) => {
        const frame = parseBoardFrame(body);
        if (frame) this.frames.push(frame);
      },
      () => this.badFrames++,
      undefined,
      { endedFrames: true },
    );
    board.link.onHostData((bytes) => {
      this.wire.push(...bytes);
      decoder.push(bytes);
    });
  }

  /** Put `stream` (commands) on the line in DATA frames of ≤ 64 bytes. */
  send(stream: Uint8Array): void {
    for (let at = 0; at < stream.length; at += MAX_PAYLOAD) {
      this.board.link.hostWrite(encodeHostData(this.seq++, stream.subarray(at, at + MAX_PAYLOAD)));
    }
  }

  /** HELLO with `options` (HostHelloOption bits; none by default, as an older host sends it). */
  async hello(options = 0): Promise<Hello> {
    const from = this.frames.length;
    this.board.link.hostWrite(encodeHostHello(this.seq, options));
    const frame = await this.until(() => this.frames.slice(from).find((f) => f.type === BoardFrame.HELLO));
    return parseHello(frame.payload)!;
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(ms, resolve));
  }

  async until<T>(find: () => T | undefined, limitMs = 300): Promise<T> {
    const deadline = this.clock.now() + limitMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (this.clock.now() > deadline) throw new Error(`nothing after ${limitMs} ms of simulated time`);
      await this.wait(0.05);
    }
  }

  /** Every answer under `id` from frame `from` on, in order. */
  answers(id: number, from = 0): Answer[] {
    const found: Answer[] = [];
    let data: number[] = [];
    for (const frame of this.frames.slice(from)) {
      if (frame.id !== id) continue;
      if (frame.type === BoardFrame.DATA) data.push(...frame.payload);
      if (frame.type === BoardFrame.DONE) {
        const done = parseDone(frame.payload)!;
        found.push({ data, status: done.status, value: done.value });
        data = [];
      }
    }
    return found;
  }

  /** Send one command and wait for its answer. */
  async request(id: number, command: Uint8Array): Promise<Answer> {
    const from = this.frames.length;
    this.send(command);
    return this.until(() => this.answers(id, from)[0]);
  }

  /** Index of the frame that is the DONE for `id`, from `from` on. */
  doneIndex(id: number, from = 0): number {
    return this.frames.findIndex((f, i) => i >= from && f.type === BoardFrame.DONE && f.id === id);
  }

  intEvents(from = 0): BoardFrameView[] {
    return this.frames.slice(from).filter((f) => f.type === BoardFrame.EVENT && f.payload[0] === EventKind.INT);
  }
}
