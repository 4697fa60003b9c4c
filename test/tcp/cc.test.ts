import { describe, expect, it } from 'vitest';
import { cubic } from '../../src/tcp/congestion.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import type { TcpRepr } from '../../src/wire/tcp.js';
import { F, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';

/**
 * Congestion control seen on the wire: which segments an ACK releases, and cwnd/ssthresh after
 * each step (RFC 5681, RFC 6582 NewReno without SACK, RFC 9438 CUBIC when chosen).
 */

const MSS = 1460;
const IW10 = { ...PLAIN, initialWindowSegments: 10 };

/** Sequence number of the i-th full segment after the SYN. */
const at = (iss: number, i: number) => (iss + 1 + i * MSS) >>> 0;
/** The segments as [segment index, payload length]. */
const indexes = (iss: number, segs: TcpRepr[]) => segs.map((s) => [(s.sequence - iss - 1) / MSS, s.payload.length]);

function open(options: Partial<TcpOptions> = IW10) {
  const h = new SegmentHarness(options);
  const { conn, iss } = passiveOpen(h);
  /** A pure ACK from the peer for everything before segment i (same window: a duplicate when repeated). */
  const ackTo = (i: number) => {
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: at(iss, i) });
    return indexes(iss, h.take());
  };
  return { h, conn, iss, ackTo };
}

describe('NewReno congestion control, segment by segment (RFC 5681 §3, RFC 6582)', () => {
  it('slow start: each ACK grows cwnd by min(acked, SMSS), so a stretch ACK of two segments adds only one (RFC 5681 §3.1 eq. 2)', () => {
    const { h, conn, iss, ackTo } = open(PLAIN);
    conn.write(bytes(20 * MSS));
    // IW = min(4·SMSS, max(2·SMSS, 4380)) = 4380 bytes: three segments.
    expect(indexes(iss, h.take())).toEqual([
      [0, MSS],
      [1, MSS],
      [2, MSS],
    ]);
    expect(conn.cc.ssthresh).toBeGreaterThan(1e9);
    // One segment ACKed: cwnd 3 → 4 segments, two in flight, two more leave.
    expect(ackTo(1)).toEqual([
      [3, MSS],
      [4, MSS],
    ]);
    expect(conn.cc.cwnd).toBe(4 * MSS);
    // Two segments ACKed at once: cwnd grows by one SMSS, not two (byte counting with L = 1 SMSS).
    expect(ackTo(3)).toEqual([
      [5, MSS],
      [6, MSS],
      [7, MSS],
    ]);
    expect(conn.cc.cwnd).toBe(5 * MSS);
    // A sub-segment ACK grows it by the bytes it ACKs.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: at(iss, 3) + 500 });
    expect(conn.cc.cwnd).toBe(5 * MSS + 500);
  });

  it('fast retransmit: the third duplicate ACK resends SND.UNA, ssthresh = FlightSize/2 without the Limited Transmit segments, cwnd = ssthresh + 3·SMSS', () => {
    const { h, conn, ackTo } = open();
    conn.write(bytes(40 * MSS));
    expect(h.take()).toHaveLength(10);
    // Segment 0 is lost; the first two duplicates release one new segment each (RFC 3042).
    expect(ackTo(0)).toEqual([[10, MSS]]);
    expect(ackTo(0)).toEqual([[11, MSS]]);
    expect(ackTo(0)).toEqual([[0, MSS]]);
    expect(conn.inRecovery).toBe(true);
    expect(h.tcp.stats.fastRetransmits).toBe(1);
    // RFC 5681 §3.2 step 2: FlightSize is the ten segments of the window; the two sent by
    // Limited Transmit "MUST NOT be included in this calculation".
    expect(conn.cc.ssthresh).toBe(5 * MSS);
    expect(conn.cc.cwnd).toBe(8 * MSS);
    // Step 4: each further duplicate inflates cwnd by one SMSS; new data leaves once cwnd passes
    // the 12 segments in flight.
    for (let k = 4; k <= 7; k++) expect(ackTo(0)).toEqual([]);
    expect(conn.cc.cwnd).toBe(12 * MSS);
    expect(ackTo(0)).toEqual([[12, MSS]]);
    expect(conn.cc.cwnd).toBe(13 * MSS);
    expect(h.tcp.stats.retransmitTimeouts).toBe(0);
  });

  it('ssthresh is never below 2·SMSS (RFC 5681 §3.1 eq. 4)', () => {
    const { h, conn, ackTo } = open(PLAIN);
    conn.write(bytes(20 * MSS));
    expect(h.take()).toHaveLength(3);
    expect(ackTo(0)).toEqual([[3, MSS]]);
    expect(ackTo(0)).toEqual([[4, MSS]]);
    expect(ackTo(0)).toEqual([[0, MSS]]);
    // FlightSize/2 = 1.5 segments.
    expect(conn.cc.ssthresh).toBe(2 * MSS);
    expect(conn.cc.cwnd).toBe(5 * MSS);
  });

  it('a partial ACK resends the next hole at once and stays in recovery; the full ACK deflates cwnd to ssthresh (RFC 6582 §3.2)', () => {
    const { h, conn, ackTo } = open();
    conn.write(bytes(40 * MSS));
    h.take();
    // Segments 0 and 5 are lost. The peer holds 1–4 and 6–11: ten duplicate ACKs.
    expect(ackTo(0)).toEqual([[10, MSS]]);
    expect(ackTo(0)).toEqual([[11, MSS]]);
    expect(ackTo(0)).toEqual([[0, MSS]]);
    const sent: number[][] = [];
    for (let k = 4; k <= 10; k++) sent.push(...ackTo(0));
    expect(sent).toEqual([
      [12, MSS],
      [13, MSS],
      [14, MSS],
    ]);
    expect(conn.cc.cwnd).toBe(15 * MSS);
    // The resent segment 0 arrives: the ACK stops at the second hole, below "recover" (segment 12).
    // Step 4: segment 5 goes at once (not after an RTO); cwnd deflates by the 5 segments ACKed and
    // grows by one, which lets one new segment out.
    expect(ackTo(5)).toEqual([
      [5, MSS],
      [15, MSS],
    ]);
    expect(conn.inRecovery).toBe(true);
    expect(conn.cc.cwnd).toBe(11 * MSS);
    // The resent segment 5 arrives: everything up to "recover" is ACKed. Step 3: cwnd =
    // min(ssthresh, max(FlightSize, SMSS) + SMSS) = ssthresh here (four segments in flight).
    expect(ackTo(12)).toEqual([[16, MSS]]);
    expect(conn.inRecovery).toBe(false);
    expect(conn.cc.cwnd).toBe(conn.cc.ssthresh);
    expect(conn.cc.ssthresh).toBe(5 * MSS);
    expect(h.tcp.stats.fastRetransmits).toBe(1);
    expect(h.tcp.stats.retransmitTimeouts).toBe(0);
  });

  it('a full ACK with nothing left in flight deflates to FlightSize + SMSS, not ssthresh: no burst (RFC 6582 §3.2 step 3)', () => {
    const { h, conn, ackTo } = open();
    conn.write(bytes(10 * MSS));
    h.take();
    for (let k = 1; k <= 3; k++) ackTo(0);
    expect(conn.inRecovery).toBe(true);
    expect(conn.cc.ssthresh).toBe(5 * MSS);
    expect(ackTo(10)).toEqual([]);
    expect(conn.inRecovery).toBe(false);
    expect(conn.cc.cwnd).toBe(2 * MSS);
    conn.write(bytes(10 * MSS));
    expect(h.take()).toHaveLength(2);
  });

  it('after recovery: slow start up to ssthresh, then congestion avoidance adds one SMSS per window of ACKed bytes (RFC 5681 §3.1)', () => {
    const { h, conn, ackTo } = open();
    conn.write(bytes(10 * MSS));
    h.take();
    for (let k = 1; k <= 3; k++) ackTo(0);
    ackTo(10);
    expect([conn.cc.cwnd, conn.cc.ssthresh]).toEqual([2 * MSS, 5 * MSS]);
    conn.write(bytes(40 * MSS));
    h.take();
    const cwnds: number[] = [];
    const released: number[] = [];
    for (let i = 11; i <= 24; i++) {
      released.push(ackTo(i).length);
      cwnds.push(conn.cc.cwnd / MSS);
    }
    // 3, 4, 5 (slow start reaches ssthresh), then +1 only after 5 segments' worth of ACKs, then
    // +1 after 6 more.
    expect(cwnds).toEqual([3, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7]);
    // The wire agrees: two segments per ACK in slow start, one per ACK in avoidance, two when cwnd grows.
    expect(released).toEqual([2, 2, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2]);
    expect(h.tcp.stats.retransmitTimeouts).toBe(0);
  });
});

describe('pluggable congestion control (TcpOptions.congestionControl)', () => {
  it('NewReno by default; with congestionControl: cubic a loss cuts the window to β = 0.7 of it, not ½ (RFC 9438 §4.6)', () => {
    const lose = (options: Partial<TcpOptions>) => {
      const { h, conn, ackTo } = open(options);
      conn.write(bytes(10 * MSS));
      h.take();
      for (let k = 1; k <= 3; k++) ackTo(0);
      expect(conn.inRecovery).toBe(true);
      return conn.cc;
    };
    const reno = lose(IW10);
    expect(reno.name).toBe('newreno');
    expect(reno.ssthresh).toBe(5 * MSS);
    const c = lose({ ...IW10, congestionControl: cubic });
    expect(c.name).toBe('cubic');
    expect(c.ssthresh).toBe(Math.floor(10 * MSS * 0.7));
    // The connection's recovery still inflates by the three segments the duplicates stand for.
    expect(c.cwnd).toBe(Math.floor(10 * MSS * 0.7) + 3 * MSS);
  });
});
