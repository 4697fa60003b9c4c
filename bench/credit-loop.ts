/**
 * The bridge's credit loop, measured on a simulated board: when each board frame (every one
 * carries the credit report) leaves the AVR's UART, when the USB-serial model hands it to the
 * host, when the host writes what that report released, and when those bytes reach the AVR's
 * receiver; and where the host → board line idled. All times are the simulation's virtual time.
 */
import type { SimulatedBoard } from '../boards/sim/index.js';
import { FrameDecoder, parseBoardFrame } from '../hal/bridge/protocol.js';

interface BoardReport {
  /** The frame's credit report: wire bytes consumed, mod 2^16. */
  readonly consumed: number;
  /** Its delimiter left the AVR's UART. */
  readonly leftMs: number;
  /** The USB-serial model handed it to the host (set when it arrives). */
  hostMs?: number;
}

interface HostWrite {
  readonly atMs: number;
  /** Index of its first byte in the host → board stream since the probe started. */
  readonly first: number;
  readonly length: number;
}

/** One credit round trip: a report that let the host write again. */
export interface CreditTrip {
  /** Board UART → host (the USB-serial chip's buffering and flush). */
  readonly upMs: number;
  /** Host: the report's arrival → its write. */
  readonly hostMs: number;
  /** The write → its first byte through the AVR's receiver (USB frame, and the line's queue). */
  readonly downMs: number;
  /** The reported byte's arrival at the board → the report leaving the UART (the ACK's lag). */
  readonly lagMs: number;
  /** The receiver idled this long before the first released byte. */
  readonly idleMs: number;
  /** The report left the UART this long after the line went dry (negative: before, and it waited in the chip). */
  readonly leftAfterDryMs: number;
  /** The line went dry → the report reached the host. */
  readonly dryToHostMs: number;
}

export interface CreditLoopFigures {
  readonly trips: readonly CreditTrip[];
  /** Every report the board sent during the run: UART → host, ms (the chip's hold, whatever released what). */
  readonly reportUpMs: readonly number[];
  /** The receiver's idle time over the run, and how much of it came before released bytes. */
  readonly idleMs: number;
  readonly idleBeforeReleasedMs: number;
  readonly wireBytes: number;
  readonly durationMs: number;
}

const mean = (values: readonly number[]): number => (values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length);

export function meanOf(trips: readonly CreditTrip[], key: keyof CreditTrip): number {
  return mean(trips.map((t) => t[key]));
}

export class CreditProbe {
  private readonly reports: BoardReport[] = [];
  /** Reports before this one have reached the host. */
  private delivered = 0;
  private readonly writes: HostWrite[] = [];
  private written = 0;
  /** Arrival time of each host → board byte at the AVR's receiver. */
  private readonly arrivals: number[] = [];
  private readonly stops: (() => void)[] = [];
  /** rxIndex(consumed) = anchorIndex + (consumed - anchorConsumed) mod 2^16 (see anchor()). */
  private anchorConsumed = 0;
  private anchorIndex = 0;

  constructor(private readonly board: SimulatedBoard) {
    const { mcu, link, clock } = board;
    // Reports and host arrivals are paired in order by their consumed count: a frame already on its
    // way when the probe started reaches the host unmatched, and on the ideal link a frame reaches
    // the host before this probe hears the board send it.
    const unsent: { consumed: number; hostMs: number }[] = [];
    let unarrived = 0;
    const pair = () => {
      while (unarrived < this.reports.length && unsent.length > 0) {
        if (unsent[0]!.consumed !== this.reports[unarrived]!.consumed) {
          unsent.shift();
          continue;
        }
        this.reports[unarrived++]!.hostMs = unsent.shift()!.hostMs;
        this.delivered = unarrived;
      }
    };
    const sent = new FrameDecoder(
      (body) => {
        const frame = parseBoardFrame(body);
        if (frame) this.reports.push({ consumed: frame.consumed, leftMs: mcu.timeMs ?? clock.now() });
        pair();
      },
      undefined,
      undefined,
      { endedFrames: true },
    );
    const received = new FrameDecoder(
      (body) => {
        const frame = parseBoardFrame(body);
        // Handed over while the AVR runs ahead of the clock (the chip's buffer filled), or on a timer.
        if (frame) unsent.push({ consumed: frame.consumed, hostMs: Math.max(clock.now(), mcu.timeMs ?? 0) });
        pair();
      },
      undefined,
      undefined,
      { endedFrames: true },
    );
    this.stops.push(
      mcu.onTransmit((bytes) => sent.push(bytes)),
      link.onHostData((bytes) => received.push(bytes)),
      link.onHostWrite((bytes) => {
        this.writes.push({ atMs: clock.now(), first: this.written, length: bytes.length });
        this.written += bytes.length;
      }),
      mcu.onReceive(() => this.arrivals.push(mcu.timeMs ?? clock.now())),
    );
  }

  /**
   * Tie the board's consumed count to the byte stream: call with the link quiet (every byte the
   * host wrote has reached the board, been consumed and reported, and the report has arrived).
   */
  anchor(): void {
    const last = this.reports.at(-1);
    if (!last || this.written !== this.arrivals.length) throw new Error(`the link is not quiet: ${this.written} written, ${this.arrivals.length} arrived`);
    this.anchorConsumed = last.consumed;
    this.anchorIndex = this.arrivals.length;
  }

  stop(): void {
    for (const stop of this.stops) stop();
  }

  /** The credit round trips and the receiver's idle time between `fromMs` and `toMs` at `baud`. */
  figures(fromMs: number, toMs: number, baud: number): CreditLoopFigures {
    const byteMs = (10 * 1000) / baud;
    const trips: CreditTrip[] = [];
    let idleBeforeReleasedMs = 0;
    let reportAt = 0;
    for (const write of this.writes) {
      if (write.atMs <= fromMs || write.atMs > toMs) continue;
      // The report that let this write go: the last to reach the host before it.
      while (reportAt + 1 < this.delivered && this.reports[reportAt + 1]!.hostMs! <= write.atMs) reportAt++;
      const report = this.reports[reportAt]!;
      const arrived = this.arrivals[write.first];
      if (report.hostMs === undefined || report.hostMs > write.atMs || arrived === undefined) continue;
      const previous = this.arrivals[write.first - 1] ?? arrived;
      const idleMs = Math.max(0, arrived - previous - byteMs);
      const dryMs = previous + byteMs;
      const reported = this.anchorIndex + ((report.consumed - this.anchorConsumed) & 0xffff);
      const reportedArrival = this.arrivals[reported - 1] ?? report.leftMs;
      idleBeforeReleasedMs += idleMs;
      trips.push({
        upMs: report.hostMs - report.leftMs,
        hostMs: write.atMs - report.hostMs,
        downMs: arrived - write.atMs,
        lagMs: report.leftMs - reportedArrival,
        idleMs,
        leftAfterDryMs: report.leftMs - dryMs,
        dryToHostMs: report.hostMs - dryMs,
      });
    }
    let idleMs = 0;
    let wireBytes = 0;
    let last = fromMs;
    for (const at of this.arrivals) {
      if (at <= fromMs || at > toMs) continue;
      idleMs += Math.max(0, at - last - byteMs);
      last = at;
      wireBytes++;
    }
    const reportUpMs = this.reports.filter((r) => r.leftMs > fromMs && r.leftMs <= toMs && r.hostMs !== undefined).map((r) => r.hostMs! - r.leftMs);
    return { trips, reportUpMs, idleMs, idleBeforeReleasedMs, wireBytes, durationMs: toMs - fromMs };
  }
}
