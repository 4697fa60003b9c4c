import { describe, expect, it } from 'vitest';
import { F, LOCAL, REMOTE, SegmentHarness } from './harness.js';
import { PEER_ISN, PLAIN, bytes, passiveOpen } from './segment-helpers.js';
import type { TcpListener } from '../../src/tcp/tcp.js';

/**
 * TCP against a hostile peer, segment by segment on the virtual clock: the floors on what a peer
 * or an ICMP message may make us send (MSS 48, path MTU 552, as Linux), the one overlap rule for
 * received data in every layout (the first copy of a byte wins), and LAND segments.
 */
const mark = (n: number, value: number) => new Uint8Array(n).fill(value);

describe('floors on segment size', () => {
  it('a SYN announcing MSS 1 is taken as MSS 48 (CVE-2019-11479): data goes in 48-byte segments, not 1-byte ones', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h, { maxSegmentSize: 1 });
    conn.write(bytes(480));
    const sent = h.take();
    expect(sent.map((s) => s.payload.length)).toEqual(Array(sent.length).fill(48));
    expect(sent[0]!.sequence).toBe(iss + 1);
    expect(h.tcp.stats.peerMssRaised).toBe(1);
  });

  it('a SYN-ACK announcing MSS 0 is taken as 48 too', () => {
    const h = new SegmentHarness(PLAIN);
    const conn = h.tcp.connect({ remoteAddress: REMOTE, remotePort: 40000, localPort: 80 });
    if (typeof conn === 'string') throw new Error(conn);
    const syn = h.takeOne();
    h.inject({ flags: F.SYN | F.ACK, sequence: PEER_ISN, acknowledgment: syn.sequence + 1, maxSegmentSize: 0 });
    h.take();
    conn.write(bytes(96));
    expect(h.take().map((s) => s.payload.length)).toEqual([48, 48]);
  });

  it('an MSS at or above the floor is taken as it is', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn } = passiveOpen(h, { maxSegmentSize: 100 });
    conn.write(bytes(300));
    expect(h.take().map((s) => s.payload.length)).toEqual([100, 100, 100]);
    expect(h.tcp.stats.peerMssRaised).toBe(0);
  });

  it.each([68, 296, 551])('an ICMP fragmentation needed with next-hop MTU %i is taken as 552: segments of 512, not smaller', (mtu) => {
    const h = new SegmentHarness(PLAIN);
    const { conn, iss } = passiveOpen(h);
    conn.write(bytes(2 * 1460));
    const header = h.ip.sent[0]!.bytes.slice(0, 8);
    h.take();
    h.tcp.icmpError({ kind: 'fragmentation-needed', type: 3, code: 4, reporter: REMOTE, originalSource: LOCAL, originalDestination: REMOTE, protocol: 6, originalTransportHeader: header, nextHopMtu: mtu });
    const again = h.take();
    expect(again[0]).toMatchObject({ sequence: iss + 1 });
    expect(Math.max(...again.map((s) => s.payload.length))).toBe(512);
    expect(conn.peerMss).toBe(512);
    expect(h.tcp.stats.pathMtuRaised).toBe(1);
  });

  it('a next-hop MTU of 0 (a router too old to say) changes nothing', () => {
    const h = new SegmentHarness(PLAIN);
    const { conn } = passiveOpen(h);
    conn.write(bytes(1460));
    const header = h.ip.sent[0]!.bytes.slice(0, 8);
    h.take();
    h.tcp.icmpError({ kind: 'fragmentation-needed', type: 3, code: 4, reporter: REMOTE, originalSource: LOCAL, originalDestination: REMOTE, protocol: 6, originalTransportHeader: header, nextHopMtu: 0 });
    expect(h.take()).toEqual([]);
    expect(conn.peerMss).toBe(1460);
  });
});

describe('overlapping data: the first copy of a byte wins, in every layout', () => {
  /** An established connection; segments carry `value`-filled payloads so the kept copy shows. */
  function established() {
    const h = new SegmentHarness(PLAIN);
    const { conn } = passiveOpen(h);
    h.take();
    const at = (offset: number) => PEER_ISN + 1 + offset;
    const send = (offset: number, length: number, value: number) => h.inject({ flags: F.ACK | F.PSH, sequence: at(offset), acknowledgment: conn.sndNxt, payload: mark(length, value) });
    const read = () => Array.from(conn.read());
    return { h, conn, send, read };
  }

  it('in-order data reaching into held out-of-order bytes stops where they start', () => {
    const { send, read } = established();
    send(100, 100, 0xaa);
    send(0, 200, 0xbb);
    expect(read()).toEqual([...mark(100, 0xbb), ...mark(100, 0xaa)]);
  });

  it('a segment overlapping already delivered bytes adds only what follows them', () => {
    const { send, read } = established();
    send(0, 100, 0xaa);
    expect(read()).toEqual([...mark(100, 0xaa)]);
    send(50, 100, 0xbb);
    expect(read()).toEqual([...mark(50, 0xbb)]);
  });

  it('an out-of-order segment covering held ones fills only the gaps between them', () => {
    const { send, read } = established();
    send(100, 50, 0xaa);
    send(200, 50, 0xaa);
    send(50, 250, 0xbb);
    send(0, 50, 0xcc);
    expect(read()).toEqual([...mark(50, 0xcc), ...mark(50, 0xbb), ...mark(50, 0xaa), ...mark(50, 0xbb), ...mark(50, 0xaa), ...mark(50, 0xbb)]);
  });

  it('an exact duplicate of held bytes changes nothing', () => {
    const { send, read } = established();
    send(100, 100, 0xaa);
    send(100, 100, 0xbb);
    send(0, 100, 0xcc);
    expect(read()).toEqual([...mark(100, 0xcc), ...mark(100, 0xaa)]);
  });
});

describe('LAND (RFC 4987 §4.1)', () => {
  it('a SYN with our address and port on both sides is dropped and counted: no SYN-ACK, no half-open connection', () => {
    const h = new SegmentHarness(PLAIN);
    const listener = h.tcp.listen({ port: 80 }) as TcpListener;
    h.inject({ flags: F.SYN, sequence: 1000, sourcePort: 80, destinationPort: 80 }, LOCAL, LOCAL);
    expect(h.take()).toEqual([]);
    expect(listener.synQueue.size).toBe(0);
    expect(h.tcp.connectionCount).toBe(0);
    expect(h.tcp.stats.dropped.land).toBe(1);
  });

  it('our address on both sides with different ports is not LAND (a connection to ourselves)', () => {
    const h = new SegmentHarness(PLAIN);
    h.tcp.listen({ port: 80 });
    h.inject({ flags: F.SYN, sequence: 1000, sourcePort: 40000, destinationPort: 80 }, LOCAL, LOCAL);
    expect(h.takeOne().flags).toBe(F.SYN | F.ACK);
    expect(h.tcp.stats.dropped.land).toBe(0);
  });
});

