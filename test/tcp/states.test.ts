import { describe, expect, it } from 'vitest';
import { TcpListener } from '../../src/tcp/tcp.js';
import type { TcpConnection } from '../../src/tcp/connection.js';
import { F, REMOTE, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, activeOpen, bytes, passiveOpen, record } from './segment-helpers.js';

describe('RFC 9293 state machine, segment by segment', () => {
  it('passive open: SYN to a listener gets SYN-ACK with our MSS; the ACK completes it into the accept queue', () => {
    const h = new SegmentHarness(PLAIN);
    const listener = h.tcp.listen({ port: 80 }) as TcpListener;
    let accepted = 0;
    listener.onConnection = () => accepted++;
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1200 });
    const synAck = h.takeOne();
    expect(synAck).toMatchObject({ flags: F.SYN | F.ACK, acknowledgment: PEER_ISN + 1, window: 65535, maxSegmentSize: 1460, sourcePort: 80, destinationPort: 40000 });
    expect(synAck.windowScale).toBeUndefined();
    expect(h.tcp.socketTable().map((r) => r.state)).toEqual(['LISTEN', 'SYN-RECEIVED']);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: synAck.sequence + 1 });
    expect(h.take()).toEqual([]);
    expect(accepted).toBe(1);
    const conn = listener.accept()!;
    expect(conn.state).toBe('ESTABLISHED');
    expect(conn.peerMss).toBe(1200);
  });

  it('active open: SYN with MSS, window scale, SACK-permitted and timestamps; SYN-ACK is answered with an ACK', () => {
    const h = new SegmentHarness();
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const rec = record(conn);
    const syn = h.takeOne();
    expect(syn).toMatchObject({ flags: F.SYN, maxSegmentSize: 1460, windowScale: 1, sackPermitted: true, window: 65535 });
    expect(syn.timestamp?.echo).toBe(0);
    expect(conn.state).toBe('SYN-SENT');
    h.advance(30);
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 555, echo: syn.timestamp!.value } });
    const ack = h.takeOne();
    expect(ack).toMatchObject({ flags: F.ACK, sequence: syn.sequence + 1, acknowledgment: PEER_ISN + 1, window: 32768, timestamp: { echo: 555 } });
    expect(conn.state).toBe('ESTABLISHED');
    expect(rec.events).toEqual(['connect']);
    expect(conn.sndScale).toBe(7);
    expect(conn.rcvScale).toBe(1);
    expect(conn.sackEnabled && conn.timestampsEnabled).toBe(true);
    expect(conn.srtt).toBe(30);
  });

  it('clamps the MSS to the route MTU (RFC 9293 §3.7.1)', () => {
    const h = new SegmentHarness(PLAIN);
    h.ip.mtu = 576;
    h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000 });
    expect(h.takeOne().maxSegmentSize).toBe(536);
  });

  it('simultaneous open: SYN in SYN-SENT → SYN-ACK (SYN-RECEIVED); the peer SYN-ACK completes it', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const rec = record(conn);
    const syn = h.takeOne();
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1460 });
    expect(h.takeOne()).toMatchObject({ flags: F.SYN | F.ACK, sequence: syn.sequence, acknowledgment: PEER_ISN + 1 });
    expect(conn.state).toBe('SYN-RECEIVED');
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 1460 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: syn.sequence + 1, acknowledgment: PEER_ISN + 1 });
    expect(conn.state).toBe('ESTABLISHED');
    expect(rec.events).toEqual(['connect']);
  });

  it('simultaneous open also completes when the peer answers our SYN-ACK with a bare ACK', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const syn = h.takeOne();
    h.inject({ flags: F.SYN, sequence: PEER_ISN });
    h.take();
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: syn.sequence + 1 });
    expect(h.take()).toEqual([]);
    expect(conn.state).toBe('ESTABLISHED');
  });

  it('active close: FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT, which lasts 2·MSL then CLOSED', () => {
    const h = new SegmentHarness({ ...PLAIN, msl: 1000 });
    const { conn, iss, rec } = passiveOpen(h);
    conn.shutdown();
    expect(h.takeOne()).toMatchObject({ flags: F.FIN | F.ACK, sequence: iss + 1, acknowledgment: PEER_ISN + 1 });
    expect(conn.state).toBe('FIN-WAIT-1');
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    expect(conn.state).toBe('FIN-WAIT-2');
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss + 2, acknowledgment: PEER_ISN + 2 });
    expect(conn.state).toBe('TIME-WAIT');
    expect(rec.events).toEqual(['readable', 'closed']);
    expect(h.tcp.socketTable()[1]).toMatchObject({ state: 'TIME-WAIT', timer: 'time-wait', timerRemaining: 2000 });
    // A retransmitted FIN is ACKed again and restarts the 2·MSL wait.
    h.advance(1500);
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 2 });
    h.advance(1999);
    expect(conn.state).toBe('TIME-WAIT');
    h.advance(1);
    expect(conn.state).toBe('CLOSED');
    expect(h.tcp.connectionCount).toBe(0);
  });

  it('passive close: FIN is ACKed at once (CLOSE-WAIT), our FIN → LAST-ACK, its ACK → CLOSED', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss, rec } = passiveOpen(h);
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, acknowledgment: PEER_ISN + 2 });
    expect(conn.state).toBe('CLOSE-WAIT');
    expect(conn.endOfStream).toBe(true);
    // Half-close: we may still send.
    expect(conn.write(bytes(10))).toBe(10);
    expect(h.takeOne()).toMatchObject({ flags: F.ACK | F.PSH, sequence: iss + 1, payload: bytes(10) });
    conn.shutdown();
    expect(h.takeOne()).toMatchObject({ flags: F.FIN | F.ACK, sequence: iss + 11 });
    expect(conn.state).toBe('LAST-ACK');
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 2, acknowledgment: iss + 12 });
    expect(conn.state).toBe('CLOSED');
    expect(rec.events).toEqual(['readable', 'writable', 'closed']);
  });

  it('FIN-WAIT-1: a FIN that also ACKs our FIN goes straight to TIME-WAIT (RFC 9293 §3.10.7.4 eighth)', () => {
    const h = new SegmentHarness({ ...PLAIN, msl: 1000 });
    const { conn, iss, rec } = passiveOpen(h);
    conn.shutdown();
    expect(h.takeOne()).toMatchObject({ flags: F.FIN | F.ACK, sequence: iss + 1 });
    expect(conn.state).toBe('FIN-WAIT-1');
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss + 2, acknowledgment: PEER_ISN + 2 });
    expect(conn.state).toBe('TIME-WAIT');
    expect(rec.events).toEqual(['readable', 'closed']);
    expect(h.tcp.socketTable()[1]).toMatchObject({ state: 'TIME-WAIT', timer: 'time-wait', timerRemaining: 2000 });
    h.advance(2000);
    expect(conn.state).toBe('CLOSED');
    expect(h.take()).toEqual([]);
  });

  it('simultaneous close: FIN crossing FIN → CLOSING → TIME-WAIT', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.shutdown();
    h.take();
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: iss + 2, acknowledgment: PEER_ISN + 2 });
    expect(conn.state).toBe('CLOSING');
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 2, acknowledgment: iss + 2 });
    expect(conn.state).toBe('TIME-WAIT');
  });

  it('a FIN retransmission in CLOSING after its loss (RTO) is resent alone', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.shutdown();
    h.take();
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 1 });
    h.take();
    h.advance(1000);
    expect(h.takeOne()).toMatchObject({ flags: F.FIN | F.ACK, sequence: iss + 1, acknowledgment: PEER_ISN + 2 });
    expect(conn.state).toBe('CLOSING');
  });

  it('an acceptable RST in LAST-ACK or CLOSING closes the connection at once, sending nothing (RFC 9293 §3.10.7.4 second)', () => {
    // LAST-ACK: the peer's FIN ACKed, ours sent and not yet ACKed.
    const h = new SegmentHarness(PLAIN);
    const a = passiveOpen(h);
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: a.iss + 1 });
    a.conn.shutdown();
    h.take();
    expect(a.conn.state).toBe('LAST-ACK');
    h.inject({ flags: F.RST, sequence: PEER_ISN + 2 });
    expect(a.conn.state).toBe('CLOSED');
    expect(h.tcp.connectionCount).toBe(0);
    expect(a.rec.events).toEqual(['readable', 'closed']);
    // No FIN retransmission follows.
    h.advance(10_000);
    expect(h.take()).toEqual([]);

    // CLOSING: FINs crossed, ours not yet ACKed.
    const h2 = new SegmentHarness(PLAIN);
    const b = passiveOpen(h2);
    b.conn.shutdown();
    h2.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: b.iss + 1 });
    h2.take();
    expect(b.conn.state).toBe('CLOSING');
    h2.inject({ flags: F.RST, sequence: PEER_ISN + 2 });
    expect(b.conn.state).toBe('CLOSED');
    expect(h2.tcp.connectionCount).toBe(0);
    h2.advance(10_000);
    expect(h2.take()).toEqual([]);
  });

  it('close() in SYN-SENT deletes the connection without a FIN; no SYN is retransmitted and a late SYN-ACK meets RST', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const syn = h.takeOne();
    conn.close();
    expect(h.take()).toEqual([]);
    expect(conn.state).toBe('CLOSED');
    expect(h.tcp.connectionCount).toBe(0);
    h.advance(10_000);
    expect(h.take()).toEqual([]);
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: syn.sequence + 1 });
  });

  it('close() in SYN-RECEIVED (simultaneous open) leads to FIN-WAIT-1 with our FIN once the handshake completes (RFC 9293 §3.10.4)', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const syn = h.takeOne();
    h.inject({ flags: F.SYN, sequence: PEER_ISN, maxSegmentSize: 1460 });
    expect(h.takeOne()).toMatchObject({ flags: F.SYN | F.ACK });
    expect(conn.state).toBe('SYN-RECEIVED');
    conn.close();
    const sent = h.take();
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 1460 });
    sent.push(...h.take());
    expect(conn.state).toBe('FIN-WAIT-1');
    // One FIN, right after the SYN, acknowledging the peer's SYN.
    expect(sent.filter((s) => s.flags & F.FIN)).toEqual([expect.objectContaining({ flags: F.FIN | F.ACK, sequence: syn.sequence + 1, acknowledgment: PEER_ISN + 1 })]);
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: syn.sequence + 2 });
    expect(conn.state).toBe('FIN-WAIT-2');
  });

  it('a SYN-ACK carrying data delivers the data and ACKs it (RFC 9293 §3.10.7.3)', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const rec = record(conn);
    const syn = h.takeOne();
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 1460, payload: bytes(5, 0x7a) });
    expect(h.takeOne()).toMatchObject({ flags: F.ACK, sequence: syn.sequence + 1, acknowledgment: PEER_ISN + 6 });
    expect(conn.state).toBe('ESTABLISHED');
    expect(rec.events).toEqual(['connect', 'readable']);
    expect(conn.read()).toEqual(bytes(5, 0x7a));
    // The next byte from the peer is in sequence after them.
    h.inject({ flags: F.ACK | F.PSH, sequence: PEER_ISN + 6, acknowledgment: syn.sequence + 1, payload: bytes(3, 0x62) });
    expect(conn.read()).toEqual(bytes(3, 0x62));
  });

  it('answers segments for no connection with RST (RFC 9293 §3.10.7.1), never a RST with a RST', () => {
    const h = new SegmentHarness(PLAIN);
    expect(h.inject({ flags: F.SYN, sequence: 77, payload: bytes(3) })).toBe('delivered');
    expect(h.takeOne()).toMatchObject({ flags: F.RST | F.ACK, sequence: 0, acknowledgment: 81 });
    h.inject({ flags: F.ACK, sequence: 5, acknowledgment: 999 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: 999 });
    h.inject({ flags: F.RST, sequence: 5 });
    expect(h.take()).toEqual([]);
  });

  it('SYN-SENT: RST with an acceptable ACK refuses the connection; a RST without ACK, or a bad ACK, does not', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 }) as TcpConnection;
    const rec = record(conn);
    const syn = h.takeOne();
    h.inject({ flags: F.RST, sequence: 0 });
    h.inject({ flags: F.ACK, sequence: 0, acknowledgment: syn.sequence + 5 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: syn.sequence + 5 });
    expect(conn.state).toBe('SYN-SENT');
    h.inject({ flags: F.RST | F.ACK, sequence: 0, acknowledgment: syn.sequence + 1 });
    expect(conn.state).toBe('CLOSED');
    expect(rec.events).toEqual(['error ECONNREFUSED']);
  });

  it('SYN-RECEIVED: a retransmitted SYN gets the SYN-ACK again; an RST sends it back to LISTEN silently', () => {
    const h = new SegmentHarness(PLAIN);
    const listener = h.tcp.listen({ port: 80 }) as TcpListener;
    h.inject({ flags: F.SYN, sequence: PEER_ISN });
    const synAck = h.takeOne();
    h.inject({ flags: F.SYN, sequence: PEER_ISN });
    expect(h.takeOne()).toMatchObject({ flags: F.SYN | F.ACK, sequence: synAck.sequence, acknowledgment: PEER_ISN + 1 });
    h.inject({ flags: F.RST, sequence: PEER_ISN + 1 });
    expect(h.take()).toEqual([]);
    expect(listener.synQueue.size).toBe(0);
    expect(h.tcp.connectionCount).toBe(0);
  });

  it('SYN-RECEIVED: an unacceptable ACK is answered with <SEQ=SEG.ACK><CTL=RST>', () => {
    const h = new SegmentHarness(PLAIN);
    h.tcp.listen({ port: 80 });
    h.inject({ flags: F.SYN, sequence: PEER_ISN });
    const synAck = h.takeOne();
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: synAck.sequence + 50 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: synAck.sequence + 50 });
  });

  it('a listener ignores RST and answers a stray ACK with RST', () => {
    const h = new SegmentHarness({ ...PLAIN, synCookies: false });
    h.tcp.listen({ port: 80 });
    h.inject({ flags: F.RST, sequence: 1 });
    expect(h.take()).toEqual([]);
    h.inject({ flags: F.ACK, sequence: 1, acknowledgment: 1234 });
    expect(h.takeOne()).toMatchObject({ flags: F.RST, sequence: 1234 });
  });

  it('close() with unread data sends RST (RFC 1122 §4.2.2.13); abort() sends RST and forgets', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    h.inject({ flags: F.ACK | F.PSH, sequence: PEER_ISN + 1, acknowledgment: iss + 1, payload: bytes(5) });
    h.take();
    conn.close();
    expect(h.takeOne()).toMatchObject({ flags: F.RST | F.ACK, sequence: iss + 1 });
    expect(conn.state).toBe('CLOSED');
  });

  it('an orphaned connection that receives data answers RST; one in FIN-WAIT-2 times out after finWait2Timeout', () => {
    const h = new SegmentHarness({ ...PLAIN, finWait2Timeout: 5000 });
    const { conn, iss } = passiveOpen(h);
    conn.close();
    expect(h.takeOne()).toMatchObject({ flags: F.FIN | F.ACK });
    h.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    expect(conn.state).toBe('FIN-WAIT-2');
    h.advance(4999);
    expect(conn.state).toBe('FIN-WAIT-2');
    h.advance(1);
    expect(conn.state).toBe('CLOSED');

    const h2 = new SegmentHarness(PLAIN);
    const b = passiveOpen(h2);
    b.conn.close();
    h2.take();
    h2.inject({ flags: F.ACK, sequence: PEER_ISN + 1, acknowledgment: b.iss + 2, payload: bytes(4) });
    expect(h2.takeOne()).toMatchObject({ flags: F.RST | F.ACK });
    expect(b.conn.state).toBe('CLOSED');
  });

  it('reopens a TIME-WAIT connection for a new SYN with a higher sequence number (RFC 6191)', () => {
    const h = new SegmentHarness({ ...PLAIN, msl: 60_000 });
    const { conn, iss, listener } = passiveOpen(h);
    conn.shutdown();
    h.take();
    h.inject({ flags: F.FIN | F.ACK, sequence: PEER_ISN + 1, acknowledgment: iss + 2 });
    h.take();
    expect(conn.state).toBe('TIME-WAIT');
    h.inject({ flags: F.SYN, sequence: PEER_ISN + 100_000 });
    expect(h.takeOne()).toMatchObject({ flags: F.SYN | F.ACK, acknowledgment: PEER_ISN + 100_001 });
    expect(listener.synQueue.size).toBe(1);
  });

  it('ACKs transparently across sequence-number wraparound (ISN near 2^32, both sides)', () => {
    const h = new SegmentHarness(PLAIN);
    const peerIsn = 0xffff_ff00;
    const { conn, iss } = activeOpen(h, 0xffff_fff0, { sequence: peerIsn });
    expect(iss).toBe(0xffff_fff0);
    const got: number[] = [];
    conn.events.onReadable = () => got.push(conn.read().length);
    for (let i = 0; i < 4; i++) {
      h.inject({ flags: F.ACK, sequence: (peerIsn + 1 + i * 100) >>> 0, acknowledgment: (iss + 1) >>> 0, payload: bytes(100) });
    }
    const acks = h.take();
    expect(acks.map((a) => a.acknowledgment)).toEqual([(peerIsn + 201) >>> 0, (peerIsn + 401) >>> 0]);
    expect(got.reduce((a, b) => a + b, 0)).toBe(400);
    expect(conn.write(bytes(1000))).toBe(1000);
    const out = h.takeOne();
    expect(out).toMatchObject({ sequence: 0xffff_fff1, payload: bytes(1000) });
    h.inject({ flags: F.ACK, sequence: (peerIsn + 401) >>> 0, acknowledgment: (0xffff_fff1 + 1000) >>> 0 });
    expect(conn.sndUna).toBe(985);
    expect(conn.sendQueueLength).toBe(0);
  });
});
