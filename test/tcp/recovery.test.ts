import { describe, expect, it } from 'vitest';
import { F, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';

const MSS = 1460;

describe('TCP loss recovery on the virtual clock', () => {
  it('given less than a segment in flight and more queued, the RTO resend carries the queued bytes and their ACK is accepted', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(100));
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
    // Nagle holds the next 1000 bytes while the first 100 are unacknowledged.
    conn.write(bytes(1000));
    expect(h.take()).toEqual([]);
    h.advance(1000);
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(1100) });
    // RFC 5961 §5.2 tests SEG.ACK against what was sent: the ACK of the whole resend is acceptable.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1101 });
    expect(h.take()).toEqual([]);
    expect(conn.sndUna).toBe(iss + 1101);
    expect(conn.sendQueueLength).toBe(0);
    expect(conn.timerInfo().timer).toBe('off');
    expect(h.tcp.stats.dropped.ackUnsent).toBe(0);
  });

  it('Limited Transmit (RFC 3042): each of the first two duplicate ACKs releases one new segment, the third retransmits', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(10 * MSS));
    // Initial window min(4·MSS, max(2·MSS, 4380)) = 4380 bytes: three segments.
    expect(h.take().map((s) => s.sequence)).toEqual([iss + 1, iss + 1 + MSS, iss + 1 + 2 * MSS]);
    const cwnd = conn.cc.cwnd;
    const duplicate = () => h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    duplicate();
    expect(h.take().map((s) => [s.sequence, s.payload.length])).toEqual([[iss + 1 + 3 * MSS, MSS]]);
    duplicate();
    expect(h.take().map((s) => [s.sequence, s.payload.length])).toEqual([[iss + 1 + 4 * MSS, MSS]]);
    // cwnd itself did not move (RFC 3042 §2).
    expect(conn.cc.cwnd).toBe(cwnd);
    duplicate();
    expect(h.take()[0]).toMatchObject({ sequence: iss + 1, payload: bytes(MSS) });
    expect(conn.inRecovery).toBe(true);
  });
});
