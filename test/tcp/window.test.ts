import { describe, expect, it } from 'vitest';
import { F, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';

describe('RFC 5961 and segment acceptance', () => {
  it('an in-window RST that is not exactly RCV.NXT gets a challenge ACK; the exact one resets', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss, rec } = passiveOpen(h);
    h.inject({ flags: F.RST, sequence: PEER_ISN + 100 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss + 1, acknowledgment: PEER_ISN + 1 });
    expect(conn.state).toBe('ESTABLISHED');
    h.inject({ flags: F.RST, sequence: PEER_ISN + 1 });
    expect(h.take()).toEqual([]);
    expect(conn.state).toBe('CLOSED');
    expect(rec.events).toEqual(['error ECONNRESET']);
  });

  it('an out-of-window RST is dropped silently', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn } = passiveOpen(h);
    h.inject({ flags: F.RST, sequence: PEER_ISN + 100_000 });
    h.inject({ flags: F.RST, sequence: PEER_ISN - 10 });
    expect(h.take()).toEqual([]);
    expect(conn.state).toBe('ESTABLISHED');
  });

  it('a SYN on an established connection gets a challenge ACK, never a reset (RFC 5961 §4.2)', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    h.inject({ flags: F.SYN, sequence: PEER_ISN + 5 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss + 1, acknowledgment: PEER_ISN + 1 });
    expect(conn.state).toBe('ESTABLISHED');
  });

  it('an ACK for data never sent, or older than SND.UNA − MAX.SND.WND, is answered with an ACK and dropped (RFC 5961 §5.2)', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 50, payload: bytes(10) });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 1 });
    expect(conn.readableLength).toBe(0);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: (iss - 70_000) >>> 0, payload: bytes(10) });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 1 });
    expect(conn.readableLength).toBe(0);
  });

  it('rate-limits challenge ACKs per connection (RFC 5961 §7)', () => {
    const h = new SegmentHarness({ ...PLAIN, challengeAckLimit: 3 });
    passiveOpen(h);
    for (let i = 0; i < 10; i++) h.inject({ flags: F.RST, sequence: PEER_ISN + 10 + i });
    expect(h.take()).toHaveLength(3);
    h.advance(1000);
    h.inject({ flags: F.RST, sequence: PEER_ISN + 50 });
    expect(h.take()).toHaveLength(1);
    expect(h.tcp.stats.challengeAcksSuppressed).toBe(7);
  });

  it('TIME-WAIT ignores RST (RFC 1337)', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.shutdown();
    h.take();
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    h.take();
    h.inject({ flags: F.RST, sequence: PEER_ISN + 2 });
    expect(conn.state).toBe('TIME-WAIT');
  });

  it('data beyond the window is ACKed and dropped; a straddling segment is trimmed to the window', () => {
    const h = new SegmentHarness({ ...PLAIN, receiveBufferSize: 1000 });
    const { conn, iss } = passiveOpen(h);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 2000, acknowledgment: iss + 1, payload: bytes(10) });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 1, window: 1000 });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(1500) });
    expect(conn.readableLength).toBe(1000);
    h.advance(200);
    expect(h.takeOne()).toMatchObject({ acknowledgment: PEER_ISN + 1001, window: 0 });
  });

  it('PAWS (RFC 7323 §5): a segment with an older timestamp is dropped and ACKed; one without a timestamp is dropped', () => {
    const h = new SegmentHarness({ windowScaling: false, sack: false });
    const { conn, iss } = passiveOpen(h, { timestamp: { value: 1000, echo: 0 } }, { timestamp: { value: 1001, echo: 0 } });
    expect(conn.timestampsEnabled).toBe(true);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(10), timestamp: { value: 900, echo: 0 } });
    const ack = h.takeOne();
    expect(ack).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 1, timestamp: { echo: 1001 } });
    expect(conn.readableLength).toBe(0);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(10) });
    expect(h.take()).toEqual([]);
    expect(conn.readableLength).toBe(0);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(10), timestamp: { value: 1002, echo: 0 } });
    expect(conn.readableLength).toBe(10);
  });
});

describe('flow control', () => {
  it('advertises free buffer, closes to zero, and sends a window update only once it opens by min(buffer/2, MSS)', () => {
    const h = new SegmentHarness({ ...PLAIN, receiveBufferSize: 4000 });
    const { conn, iss, synAck } = passiveOpen(h);
    expect(synAck.window).toBe(4000);
    for (let i = 0; i < 4; i++) h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + i * 1000, acknowledgment: iss + 1, payload: bytes(1000) });
    expect(h.take().map((s) => [s.acknowledgment - PEER_ISN, s.window])).toEqual([
      [2001, 2000],
      [4001, 0],
    ]);
    expect(conn.read(1000).length).toBe(1000);
    expect(h.take()).toEqual([]);
    expect(conn.read(1000).length).toBe(1000);
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 4001, window: 2000 });
  });

  it('receiver SWS avoidance: an ACK sent for data does not move the right edge by less than min(buffer/2, MSS) (RFC 1122 §4.2.3.3)', () => {
    const h = new SegmentHarness({ ...PLAIN, receiveBufferSize: 4000 });
    const { conn, iss } = passiveOpen(h);
    const data = (from: number) => h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + from, acknowledgment: iss + 1, payload: bytes(1000) });
    data(0);
    data(1000);
    expect(h.takeOne()).toMatchObject({ acknowledgment: PEER_ISN + 2001, window: 2000 });
    // The reader frees 300 bytes: the right edge could move 300 bytes, less than min(2000, 1460).
    expect(conn.read(300).length).toBe(300);
    expect(h.take()).toEqual([]);
    data(2000);
    h.advance(200);
    // The delayed ACK keeps the right edge at PEER_ISN + 1 + 4000 (window 1000, not the 1300 free).
    expect(h.takeOne()).toMatchObject({ acknowledgment: PEER_ISN + 3001, window: 1000 });
    // Another 1200 read: the edge may now move 1500 ≥ 1460, and a window update says so.
    expect(conn.read(1200).length).toBe(1200);
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 3001, window: 2500 });
  });

  it('never shrinks the window it offered, even as unread data piles up', () => {
    const h = new SegmentHarness({ ...PLAIN, receiveBufferSize: 8000 });
    const { iss } = passiveOpen(h);
    let rightEdge = PEER_ISN + 1 + 8000;
    for (let i = 0; i < 8; i++) {
      h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + i * 1000, acknowledgment: iss + 1, payload: bytes(1000) });
      for (const s of h.take()) {
        expect(s.acknowledgment + s.window).toBeGreaterThanOrEqual(rightEdge);
        rightEdge = s.acknowledgment + s.window;
      }
    }
  });

  it('queues out-of-order data, ACKs at once with SACK blocks (RFC 2018), and ACKs the filled hole at once', () => {
    const h = new SegmentHarness({ timestamps: false, windowScaling: false });
    const { conn, iss } = passiveOpen(h, { sackPermitted: true });
    expect(conn.sackEnabled).toBe(true);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 201, acknowledgment: iss + 1, payload: bytes(100) });
    expect(h.takeOne()).toMatchObject({ acknowledgment: PEER_ISN + 1, sackBlocks: [{ left: PEER_ISN + 201, right: PEER_ISN + 301 }] });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 401, acknowledgment: iss + 1, payload: bytes(100) });
    expect(h.takeOne()).toMatchObject({
      acknowledgment: PEER_ISN + 1,
      sackBlocks: [
        { left: PEER_ISN + 401, right: PEER_ISN + 501 },
        { left: PEER_ISN + 201, right: PEER_ISN + 301 },
      ],
    });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(200) });
    expect(h.takeOne()).toMatchObject({ acknowledgment: PEER_ISN + 301, sackBlocks: [{ left: PEER_ISN + 401, right: PEER_ISN + 501 }] });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 301, acknowledgment: iss + 1, payload: bytes(100) });
    const last = h.takeOne();
    expect(last.acknowledgment).toBe(PEER_ISN + 501);
    expect(last.sackBlocks).toBeUndefined();
    expect(conn.readableLength).toBe(500);
  });

  it('bounds the out-of-order queue (maxOutOfOrderSegments)', () => {
    const h = new SegmentHarness({ ...PLAIN, maxOutOfOrderSegments: 2 });
    const { conn, iss } = passiveOpen(h);
    for (let i = 1; i <= 4; i++) h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + i * 200, acknowledgment: iss + 1, payload: bytes(100) });
    expect(h.tcp.stats.dropped.outOfOrderFull).toBe(2);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(200) });
    expect(conn.readableLength).toBe(300);
  });

  it('by default the out-of-order queue holds 64 segments, or a full-size segment per MSS of a larger receive buffer', () => {
    const held = (options: object) => {
      const h = new SegmentHarness({ ...PLAIN, ...options });
      const { iss } = passiveOpen(h);
      for (let i = 1; i <= 100; i++) h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + i * 200, acknowledgment: iss + 1, payload: bytes(100) });
      return 100 - h.tcp.stats.dropped.outOfOrderFull;
    };
    expect(held({})).toBe(64); // 64 KiB buffer: 45 MSS, so the floor of 64
    expect(held({ receiveBufferSize: 256 * 1024 })).toBe(100); // room for ceil(262144 / 1460) = 180
  });

  it('Nagle: a small write waits while data is unacknowledged; setNoDelay(true) sends at once', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(10));
    expect(h.takeOne()).toMatchObject({ sequence: iss + 1 });
    conn.write(bytes(10));
    conn.write(bytes(10));
    expect(h.take()).toEqual([]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 11 });
    expect(h.takeOne()).toMatchObject({ sequence: iss + 11, payload: bytes(20) });
    conn.setNoDelay(true);
    conn.write(bytes(5));
    expect(h.takeOne()).toMatchObject({ sequence: iss + 31, payload: bytes(5) });
  });

  it('sender SWS avoidance: does not dribble into a small window while data is in flight', () => {
    const h = new SegmentHarness({ ...PLAIN, initialWindowSegments: 10 });
    const { conn, iss } = passiveOpen(h, {}, { window: 3000 });
    conn.write(bytes(5000));
    // 80 bytes would fit, but they are less than half the largest window and data is in flight.
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 101, window: 3000 });
    expect(h.take()).toEqual([]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2921, window: 3000 });
    // A full segment goes; the 620-byte tail waits for it (Nagle) …
    expect(h.take().map((s) => s.payload.length)).toEqual([1460]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 4381, window: 3000 });
    // … and leaves once nothing is unacknowledged.
    expect(h.take().map((s) => s.payload.length)).toEqual([620]);
  });

  it('honours the peer window scale (RFC 7323 §2.3)', () => {
    const h = new SegmentHarness({ timestamps: false, sack: false, initialWindowSegments: 10 });
    const { conn, iss } = passiveOpen(h, { windowScale: 2 }, { window: 1000 });
    expect(conn.sndScale).toBe(2);
    conn.write(bytes(10_000));
    expect(conn.sndWnd).toBe(4000);
    // Two full segments fit the 4000-byte window; the 1080-byte rest waits (sender SWS avoidance).
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2921, window: 1000 });
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460]);
  });
});

describe('the send window right edge (found against Linux: a stall under load)', () => {
  it('an old segment that ACKs new data leaves the right edge where the peer put it (BSD: SND.WND −= acked)', () => {
    const h = new SegmentHarness({ ...PLAIN, initialWindowSegments: 10 });
    const { conn, iss } = passiveOpen(h, {}, { window: 6000 });
    conn.write(bytes(20_000));
    // 6000 bytes fit: four segments, the last one short.
    expect(h.take().map((s) => s.payload.length)).toEqual([1460, 1460, 1460, 1460]);
    // Peer data arrives out of order (a hole at PEER_ISN + 1; SND.WL1 moves past it) …
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1001, acknowledgment: iss + 1, window: 6000, payload: bytes(500) });
    h.take();
    // … then the segment that fills the hole ACKs 2920 bytes of ours with a small window. RFC
    // 9293 §3.10.7.4 takes no window from a segment older than SND.WL1, so the right edge stays
    // at iss + 1 + 6000: 2920 more bytes may go, not the 5840 that SND.UNA + SND.WND would allow.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2921, window: 1000, payload: bytes(1000) });
    const sent = h.take().filter((s) => s.payload.length > 0);
    const end = Math.max(...sent.map((s) => s.sequence + s.payload.length));
    expect(end - (iss + 1)).toBeLessThanOrEqual(6000);
    expect(conn.sndWnd).toBe(6000 - 2920);
  });

  it('a retransmission is cut to what the peer\'s window still takes (Linux drops a segment that ends beyond it)', () => {
    const h = new SegmentHarness({ ...PLAIN, initialWindowSegments: 10 });
    const { conn, iss } = passiveOpen(h, {}, { window: 8000 });
    conn.write(bytes(20_000));
    h.take();
    // The peer ACKs nothing new and shrinks its offer to 1000 bytes from SND.UNA.
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, window: 1000 });
    h.take();
    h.advance(conn.rto + 1);
    const retransmitted = h.take().filter((s) => s.payload.length > 0);
    expect(retransmitted.map((s) => [s.sequence - iss, s.payload.length])).toEqual([[1, 1000]]);
  });
});

describe('receive window bounded by the NIC’s own buffer (NicCapabilities.receiveBuffer)', () => {
  // An ENC28J60 ring of 5 KB, 11 bytes per frame of its own (status vector, FCS, pad).
  const RING = { bytes: 5120, frameOverhead: 11 };

  it('offers only the whole segments that fit the ring, however much the socket buffer holds', () => {
    const h = new SegmentHarness(PLAIN);
    h.ip.receiveBuffer = RING;
    const { synAck, iss } = passiveOpen(h);
    // (1460 + 52 + 14 + 11) per full frame: three fit in 5120 bytes.
    expect(synAck.window).toBe(3 * 1460);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(1460) });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + 1460, acknowledgment: iss + 1, payload: bytes(1460) });
    // The reader has not read: the buffer still has ~61 KiB free, the window stays at the ring's size.
    const ack = h.takeOne();
    expect(ack).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 1 + 2920 });
    expect(ack.window).toBe(3 * 1460);
  });

  it('without a NIC buffer the window is the socket buffer', () => {
    const h = new SegmentHarness(PLAIN);
    const { synAck } = passiveOpen(h);
    expect(synAck.window).toBe(0xffff);
  });

  it('closes as the reader falls behind, like any window: the smaller of free buffer and ring', () => {
    const h = new SegmentHarness({ ...PLAIN, receiveBufferSize: 4000 });
    h.ip.receiveBuffer = RING;
    const { synAck, iss } = passiveOpen(h);
    expect(synAck.window).toBe(4000);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(1460) });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1 + 1460, acknowledgment: iss + 1, payload: bytes(1460) });
    expect(h.takeOne().window).toBe(4000 - 2920);
  });
});
