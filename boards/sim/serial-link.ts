/**
 * The USB-serial cable between host and simulated board: latency, the USB-serial chip's
 * buffering, and faults. It sits in front of any `SerialTarget` (the avr8js board, the
 * TypeScript model) and is what the serialport binding (binding.ts) and the pty talk to.
 *
 * Latency model (board → host is the slow direction, /work/shared/reference/bridge-and-avr.md §2.3):
 * - `16u2` (Uno/Mega stock firmware): bytes wait for a 4.096 ms timer tick, or go at once when
 *   more than 96 are buffered;
 * - `ftdi` (FT232R, latency timer 16 ms default; `ftdi-1ms` tuned): a 62-byte packet goes when
 *   full, a partial one when the latency timer expires;
 * - `ideal`: no buffering.
 * Host → board, every model adds one USB frame (1 ms). The UART byte rate is the board's: avr8js
 * paces its USART at the configured baud; the model board consumes instantly.
 */
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import type { Random } from '../../src/time/random.js';
import { randomUnit } from '../../src/time/random.js';
import type { SerialTarget } from '../bootloader/pty.js';

export interface LinkModel {
  readonly name: string;
  /** USB OUT delay, host → board. */
  readonly hostToBoardMs: number;
  /** Board → host: flush on a fixed grid of this period (16U2) … */
  readonly flushGridMs?: number;
  /** … or this long after the first byte went into an empty buffer (FTDI latency timer). */
  readonly latencyTimerMs?: number;
  /** Flush at once when this many bytes are buffered. */
  readonly flushBytes: number;
}

export const LINK_MODELS = {
  ideal: { name: 'ideal', hostToBoardMs: 0, flushBytes: 1 },
  '16u2': { name: '16u2', hostToBoardMs: 1, flushGridMs: 4.096, flushBytes: 97 },
  ftdi: { name: 'ftdi', hostToBoardMs: 1, latencyTimerMs: 16, flushBytes: 62 },
  'ftdi-1ms': { name: 'ftdi-1ms', hostToBoardMs: 1, latencyTimerMs: 1, flushBytes: 62 },
} as const satisfies Record<string, LinkModel>;

export type LinkModelName = keyof typeof LINK_MODELS;

export type Direction = 'host-to-board' | 'board-to-host';

/** Random faults on the wire, per direction (probabilities per byte). */
export interface LinkFaults {
  readonly corrupt?: number;
  readonly drop?: number;
  readonly random: Random;
}

export interface LinkStats {
  hostToBoardBytes: number;
  boardToHostBytes: number;
  corrupted: number;
  dropped: number;
}

/** The board side as the link sees it (both boards implement it). */
export interface LinkTarget extends SerialTarget {
  /** Power the board off (port unplugged with the board). */
  powerOff?(): void;
}

export class SerialLink {
  readonly stats: LinkStats = { hostToBoardBytes: 0, boardToHostBytes: 0, corrupted: 0, dropped: 0 };
  /** False while the port is unplugged. */
  present = true;
  private buffer: number[] = [];
  private flushTimer: TimerHandle | undefined;
  private readonly hostListeners = new Set<(bytes: Uint8Array) => void>();
  private readonly presenceListeners = new Set<(present: boolean) => void>();
  private readonly faults: Partial<Record<Direction, LinkFaults>> = {};
  private readonly oneShots: Record<Direction, { corrupt: number; drop: number; skip: number }> = {
    'host-to-board': { corrupt: 0, drop: 0, skip: 0 },
    'board-to-host': { corrupt: 0, drop: 0, skip: 0 },
  };
  private readonly unsubscribe: () => void;

  constructor(
    private readonly clock: Clock,
    readonly target: LinkTarget,
    public model: LinkModel = LINK_MODELS.ideal,
  ) {
    this.unsubscribe = target.onData((bytes) => this.fromBoard(bytes));
  }

  // ---- host side ----

  /** The host opened the port: DTR pulses the board's reset (auto-reset boards). */
  hostOpen(resetBoard: boolean): void {
    if (resetBoard) this.target.open();
  }

  hostWrite(bytes: Uint8Array): void {
    if (!this.present) return;
    const out = this.applyFaults('host-to-board', bytes);
    this.stats.hostToBoardBytes += out.length;
    if (out.length === 0) return;
    this.clock.schedule(this.model.hostToBoardMs, () => {
      if (this.present) this.target.write(out);
    });
  }

  onHostData(listener: (bytes: Uint8Array) => void): () => void {
    this.hostListeners.add(listener);
    return () => this.hostListeners.delete(listener);
  }

  onPresenceChange(listener: (present: boolean) => void): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  // ---- fault injection ----

  /** Random corruption/loss from now on (undefined clears). */
  setFaults(direction: Direction, faults: LinkFaults | undefined): void {
    this.faults[direction] = faults;
  }

  /** Flip a bit in each of the next `count` bytes going `direction`, after letting `afterBytes` pass. */
  corruptNext(direction: Direction, count = 1, afterBytes = 0): void {
    this.oneShots[direction].skip = afterBytes;
    this.oneShots[direction].corrupt += count;
  }

  /** Lose the next `count` bytes going `direction`. */
  dropNext(direction: Direction, count = 1): void {
    this.oneShots[direction].drop += count;
  }

  /** Unplug the USB cable: the port disappears; with `powerOff` the board loses power too. */
  vanish(options: { powerOff?: boolean } = {}): void {
    if (!this.present) return;
    this.present = false;
    this.buffer = [];
    this.flushTimer?.cancel();
    if (options.powerOff) this.target.powerOff?.();
    for (const listener of this.presenceListeners) listener(false);
  }

  /** Plug it back in. */
  reappear(): void {
    if (this.present) return;
    this.present = true;
    for (const listener of this.presenceListeners) listener(true);
  }

  close(): void {
    this.flushTimer?.cancel();
    this.unsubscribe();
  }

  // ---- board side ----

  private fromBoard(bytes: Uint8Array): void {
    if (!this.present) return;
    const out = this.applyFaults('board-to-host', bytes);
    this.stats.boardToHostBytes += out.length;
    for (const b of out) this.buffer.push(b);
    if (this.buffer.length >= this.model.flushBytes) return this.flush();
    if (this.flushTimer?.pending) return;
    const { flushGridMs, latencyTimerMs } = this.model;
    let delay = 0;
    if (flushGridMs) delay = flushGridMs - (this.clock.now() % flushGridMs);
    else if (latencyTimerMs) delay = latencyTimerMs;
    this.flushTimer = this.clock.schedule(delay, () => this.flush());
  }

  private flush(): void {
    this.flushTimer?.cancel();
    if (this.buffer.length === 0 || !this.present) return;
    const bytes = Uint8Array.from(this.buffer);
    this.buffer = [];
    for (const listener of this.hostListeners) listener(bytes);
  }

  private applyFaults(direction: Direction, bytes: Uint8Array): Uint8Array {
    const shots = this.oneShots[direction];
    const faults = this.faults[direction];
    if (!faults && shots.corrupt === 0 && shots.drop === 0) return bytes;
    const out: number[] = [];
    for (const b of bytes) {
      if (shots.skip > 0) {
        shots.skip--;
        out.push(b);
        continue;
      }
      if (shots.drop > 0 || (faults?.drop && randomUnit(faults.random) < faults.drop)) {
        if (shots.drop > 0) shots.drop--;
        this.stats.dropped++;
        continue;
      }
      if (shots.corrupt > 0 || (faults?.corrupt && randomUnit(faults.random) < faults.corrupt)) {
        if (shots.corrupt > 0) shots.corrupt--;
        this.stats.corrupted++;
        out.push(b ^ (1 << Math.floor(randomUnit(faults?.random ?? { u32: () => 0x5a5a5a5a }) * 8)));
        continue;
      }
      out.push(b);
    }
    return Uint8Array.from(out);
  }
}
