import { describe, expect, it } from 'vitest';
import { F, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';
import { seqLe } from '../../src/tcp/seq.js';

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

  it('given less than a segment in flight and more queued, a fast retransmit may carry the queued bytes, and their ACK is accepted', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(100));
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1, payload: bytes(100) });
    conn.write(bytes(1000));
    expect(h.take()).toEqual([]);
    const duplicate = () => h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    duplicate();
    duplicate();
    duplicate();
    // The resend is one segment from SND.UNA, filled from the queue: 100 bytes sent before, 1000 new.
    const resend = h.take().find((s) => s.sequence === iss + 1);
    expect(resend).toBeDefined();
    const end = iss + 1 + resend!.payload.length;
    expect(seqLe(end, conn.sndMax)).toBe(true);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: end });
    expect(conn.sndUna).toBe(end);
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

  describe('with SACK (RFC 6675)', () => {
    const SACK = { ...PLAIN, sack: true, initialWindowSegments: 10 };
    const at = (iss: number, i: number) => iss + 1 + i * MSS;

    it('given duplicate ACKs whose window grows, new SACK information still counts them (RFC 6675 §2) and the third retransmits', () => {
      const h = new SegmentHarness(SACK);
      const { conn, iss } = passiveOpen(h, { sackPermitted: true }, { window: 30_000 });
      conn.write(bytes(10 * MSS));
      expect(h.take()).toHaveLength(10);
      const sent: number[] = [];
      for (let k = 2; k <= 4; k++) {
        // Linux's receiver opens its window while it holds the out-of-order segments.
        h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, window: 30_000 + 100 * k, sackBlocks: [{ left: at(iss, 1), right: at(iss, k) }] });
        sent.push(...h.take().map((s) => s.sequence));
      }
      expect(sent).toContain(iss + 1);
      expect(conn.inRecovery).toBe(true);
      expect(h.tcp.stats.fastRetransmits).toBe(1);
      expect(h.tcp.stats.retransmitTimeouts).toBe(0);
    });

    /**
     * 20 segments written, the first window (10) sent, S0 lost: `sack(right)` answers with a
     * duplicate ACK SACKing S1 up to `right` and returns what that sends.
     */
    function twentySegmentsFirstLost() {
      const h = new SegmentHarness(SACK);
      const { conn, iss } = passiveOpen(h, { sackPermitted: true });
      conn.write(bytes(20 * MSS));
      expect(h.take()).toHaveLength(10);
      const sack = (right: number) => {
        h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, sackBlocks: [{ left: at(iss, 1), right }] });
        return h.take().map((s) => s.sequence);
      };
      return { h, conn, iss, sack };
    }

    it('IsLost (RFC 6675 §4): SACKs for DupThresh segments above a hole start recovery before the third duplicate ACK', () => {
      const { h, conn, iss, sack } = twentySegmentsFirstLost();
      // S0 is lost. Two segments SACKed above it: (DupThresh − 1)·SMSS bytes, could be reordering.
      expect(sack(at(iss, 3))).toEqual([at(iss, 10)]);
      expect(conn.inRecovery).toBe(false);
      // The next ACK (the one for S3 was lost) SACKs S1..S4: three segments above S0, which is now
      // lost by IsLost on only the second duplicate ACK.
      expect(sack(at(iss, 5))[0]).toBe(at(iss, 0));
      expect(conn.inRecovery).toBe(true);
      expect(h.tcp.stats.duplicateAcks).toBe(2);
      expect(h.tcp.stats.fastRetransmits).toBe(1);
      expect(h.tcp.stats.retransmitTimeouts).toBe(0);
    });

    it('given a lost retransmission, SACKs for three segments sent after it resend it at once, without an RTO (RACK’s inference, RFC 8985)', () => {
      const { h, conn, iss, sack } = twentySegmentsFirstLost();
      // S0 is lost; S1..S3 arrive: Limited Transmit sends S10 and S11, the third ACK retransmits S0.
      expect(sack(at(iss, 2))).toEqual([at(iss, 10)]);
      expect(sack(at(iss, 3))).toEqual([at(iss, 11)]);
      expect(sack(at(iss, 4))).toEqual([at(iss, 0)]);
      // S4..S11 arrive: the pipe drains and new segments from S12 on leave, all sent after that retransmission.
      const fresh = sack(at(iss, 12));
      expect(fresh.slice(0, 3)).toEqual([at(iss, 12), at(iss, 13), at(iss, 14)]);
      expect(fresh).not.toContain(at(iss, 0));
      // Two of them SACKed while S0 is still missing: could be reordering (DupThresh is 3).
      expect(sack(at(iss, 14))).not.toContain(at(iss, 0));
      // The third: the retransmission of S0 is lost too, and goes again now.
      expect(sack(at(iss, 15))).toContain(at(iss, 0));
      expect(h.tcp.stats.lostRetransmissions).toBe(1);
      expect(h.tcp.stats.retransmitTimeouts).toBe(0);
      expect(h.tcp.stats.fastRetransmits).toBe(1);
      // Its ACK ends the recovery.
      h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: at(iss, 15) });
      expect(conn.inRecovery).toBe(false);
    });
  });
});
