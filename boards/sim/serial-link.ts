/**
 * The USB-serial cable between host and simulated board: latency, the USB-serial chip's
 * buffering, and faults. It sits in front of any `SerialTarget` (the avr8js board, the
 * TypeScript model) and is what the serialport binding (binding.ts) and the pty talk to.
 *
 * Latency model (board → host is the slow direction; Arduino-usbserial.c, FTDI AN232B-04):
 * - `16u2` (Uno/Mega stock firmware): bytes wait for a 4.096 ms timer tick, or go at once when
 *   more than 96 are buffered;
 * - `ftdi` (FT232R, latency timer 16 ms default; `ftdi-1ms` tuned): a 62-byte packet goes when
 *   full, a partial one when the latency timer expires;
 * - `ideal`: no buffering.
 * Host → board, every model adds one USB frame (1 ms). The UART byte rate is the board's: avr8js
 * paces its USART at the configured baud; the model board consumes instantly.
 *
 * Host stalls (`stallHost`: the host takes no IN packets for a while). The 16U2's stock firmware
 * (Arduino-usbserial.c, LUFA's LightweightRingBuff.h and CDCClassDevice.c, in arduino-core-avr's
 * firmwares/atmegaxxu2) buffers board → host bytes in a 128-byte ring that its USART receive ISR
 * fills with no full check, so a byte that finds the ring full overwrites an unread one; its main
 * loop moves bytes from the ring into the one 64-byte IN endpoint bank, and for a bank the host
 * does not take it waits up to 100 ms (USB_STREAM_TIMEOUT_MS) for the byte it already took out of
 * the ring, then drops that byte and tries again on the next 4.096 ms tick. Meanwhile it moves
 * nothing from host to board. So a stalled host loses what the board sends beyond about 192 bytes,
 * as on a real Uno; an FTDI chip's buffers are modelled without limit.
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
  /** Board → host ring; a byte arriving at a full one overwrites the oldest (no full check). */
  readonly ringBytes?: number;
  /** The USB IN endpoint's bank, filled from the ring; a stalled host leaves it full. */
  readonly bankBytes?: number;
  /** How long the firmware waits for a full bank before it drops the byte in hand. */
  readonly sendTimeoutMs?: number;
}

export const LINK_MODELS = {
  ideal: { name: 'ideal', hostToBoardMs: 0, flushBytes: 1 },
  '16u2': { name: '16u2', hostToBoardMs: 1, flushGridMs: 4.096, flushBytes: 97, ringBytes: 128, bankBytes: 64, sendTimeoutMs: 100 },
  ftdi: { name: 'ftdi', hostToBoardMs: 1, latencyTimerMs: 16, flushBytes: 62 },
  'ftdi-1ms': { name: 'ftdi-1ms', hostToBoardMs: 1, latencyTimerMs: 1, flushBytes: 62 },
} as const satisfies Record<string, LinkModel>;

export type LinkModelName = keyof typeof LINK_MODELS;

export type Direction = 'host-to-board' | 'board-to-host';

/** Random faults on the wire, per direction (probabilities per byte). */
export interface LinkFaults {
  /** A bit flipped in the byte. */
  readonly corrupt?: number;
  /** The byte lost. */
  readonly drop?: number;
  /** A random byte inserted after it (noise read as a start bit). */
  readonly insert?: number;
  readonly random: Random;
}

export interface LinkStats {
  hostToBoardBytes: number;
  boardToHostBytes: number;
  corrupted: number;
  dropped: number;
  /** Board → host bytes the USB-serial chip lost while the host stalled (ring overrun, send timeout). */
  overflowed: number;
  /** Random bytes the line added (LinkFaults.insert). */
  inserted: number;
}

/** The board side as the link sees it (both boards implement it). */
export interface LinkTarget extends SerialTarget {
  /** Power the board off (port unplugged with the board). */
  powerOff?(): void;
}

export class SerialLink {
  readonly stats: LinkStats = { hostToBoardBytes: 0, boardToHostBytes: 0, corrupted: 0, dropped: 0, overflowed: 0, inserted: 0 };
  /** False while the port is unplugged. */
  present = true;
  private buffer: number[] = [];
  private flushTimer: TimerHandle | undefined;
  /** The host takes no IN packets before this time (stallHost). */
  private stalledUntil = -Infinity;
  /** Bytes in the USB IN bank, waiting for the stalled host. */
  private bank: number[] = [];
  /** The firmware waits (until `until`) to put `byte` into the full bank; nothing else moves. */
  private sending: { byte: number; until: number; timer: TimerHandle } | undefined;
  private readonly hostListeners = new Set<(bytes: Uint8Array) => void>();
  private readonly writeListeners = new Set<(bytes: Uint8Array) => void>();
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
    for (const listener of this.writeListeners) listener(bytes);
    const out = this.applyFaults('host-to-board', bytes);
    this.stats.hostToBoardBytes += out.length;
    if (out.length === 0) return;
    // While the firmware waits on a full IN bank it moves nothing towards the board either.
    const blockedMs = this.sending ? this.sending.until - this.clock.now() : 0;
    this.clock.schedule(Math.max(this.model.hostToBoardMs, blockedMs), () => {
      if (this.present) this.target.write(out);
    });
  }

  /** The host takes no data from the port for `ms` (a busy or suspended host). */
  stallHost(ms: number): void {
    this.stalledUntil = Math.max(this.stalledUntil, this.clock.now() + ms);
    this.clock.schedule(ms, () => {
      if (this.clock.now() < this.stalledUntil) return;
      // The host reads again: the bank goes first, then the firmware's byte in hand, then the rest.
      const bank = this.bank;
      this.bank = [];
      if (this.sending) {
        this.sending.timer.cancel();
        bank.push(this.sending.byte);
        this.sending = undefined;
      }
      if (bank.length > 0) this.deliver(bank);
      this.flush();
    });
  }

  onHostData(listener: (bytes: Uint8Array) => void): () => void {
    this.hostListeners.add(listener);
    return () => this.hostListeners.delete(listener);
  }

  /** The host wrote `bytes` to the port (now, before the USB frame's delay). */
  onHostWrite(listener: (bytes: Uint8Array) => void): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
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
    this.bank = [];
    this.sending?.timer.cancel();
    this.sending = undefined;
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
    this.sending?.timer.cancel();
    this.unsubscribe();
  }

  // ---- board side ----

  private fromBoard(bytes: Uint8Array): void {
    if (!this.present) return;
    const out = this.applyFaults('board-to-host', bytes);
    this.stats.boardToHostBytes += out.length;
    const ringBytes = this.model.ringBytes ?? Infinity;
    for (const b of out) {
      if (this.buffer.length >= ringBytes) {
        this.buffer.shift();
        this.stats.overflowed++;
      }
      this.buffer.push(b);
    }
    if (this.sending) return;
    if (this.buffer.length >= this.model.flushBytes) return this.flush();
    this.scheduleFlush();
  }

  private flush(): void {
    this.flushTimer?.cancel();
    if (this.buffer.length === 0 || !this.present || this.sending) return;
    if (this.clock.now() < this.stalledUntil) return this.fillBank();
    const bytes = this.buffer;
    this.buffer = [];
    this.deliver(bytes);
  }

  /** The host does not read: the ring drains into the bank, and the firmware blocks on the byte after. */
  private fillBank(): void {
    const bankBytes = this.model.bankBytes ?? Infinity;
    while (this.buffer.length > 0 && this.bank.length < bankBytes) this.bank.push(this.buffer.shift()!);
    if (this.buffer.length === 0) return;
    const timeoutMs = this.model.sendTimeoutMs ?? Infinity;
    const byte = this.buffer.shift()!;
    const timer = this.clock.schedule(timeoutMs, () => {
      // Timed out: the byte in hand is gone; the next tick tries again.
      this.sending = undefined;
      this.stats.overflowed++;
      this.scheduleFlush();
    });
    this.sending = { byte, until: this.clock.now() + timeoutMs, timer };
  }

  private scheduleFlush(): void {
    if (this.flushTimer?.pending) return;
    const { flushGridMs, latencyTimerMs } = this.model;
    let delay = 0;
    if (flushGridMs) delay = flushGridMs - (this.clock.now() % flushGridMs);
    else if (latencyTimerMs) delay = latencyTimerMs;
    this.flushTimer = this.clock.schedule(delay, () => this.flush());
  }

  private deliver(bytes: number[]): void {
    const out = Uint8Array.from(bytes);
    for (const listener of this.hostListeners) listener(out);
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
      if (faults?.insert && randomUnit(faults.random) < faults.insert) {
        this.stats.inserted++;
        out.push(faults.random.u32() & 0xff);
      }
    }
    return Uint8Array.from(out);
  }
}
