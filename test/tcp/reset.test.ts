import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/wire/address.js';
import { TcpFlag, TcpPacket, TcpParseError, TcpRepr } from '../../src/wire/tcp.js';
import { resetReplyTo, resetSegment } from '../../src/tcp/reset.js';
import { RateLimit } from '../../src/tcp/rate-limit.js';

const LOCAL = parseIpv4('192.0.2.1');
const PEER = parseIpv4('192.0.2.2');

/** Parse what we send, as the peer receives it (checksum verified). */
function received(bytes: Uint8Array): TcpRepr {
  const packet = TcpPacket.check(bytes);
  if (packet instanceof TcpParseError) throw new Error(packet.reason);
  const repr = TcpRepr.parse(packet, LOCAL, PEER);
  if (repr instanceof TcpParseError) throw new Error(repr.reason);
  return repr;
}

const incoming = (flags: number, payload = 0): TcpRepr => ({
  sourcePort: 40000,
  destinationPort: 80,
  sequence: 5000,
  acknowledgment: 7000,
  flags,
  window: 1000,
  payload: new Uint8Array(payload),
});

describe('resets (RFC 9293 §3.10.7)', () => {
  it('§3.10.7.1: a segment with ACK gets <SEQ=SEG.ACK><CTL=RST>', () => {
    const rst = received(resetReplyTo(incoming(TcpFlag.ACK | TcpFlag.PSH, 10), LOCAL, PEER));
    expect(rst).toMatchObject({ sourcePort: 80, destinationPort: 40000, sequence: 7000, acknowledgment: 0, flags: TcpFlag.RST, window: 0 });
    expect(rst.payload).toHaveLength(0);
  });

  it('§3.10.7.1: a segment without ACK gets <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN counted in SEG.LEN', () => {
    expect(received(resetReplyTo(incoming(TcpFlag.SYN), LOCAL, PEER))).toMatchObject({ sequence: 0, acknowledgment: 5001, flags: TcpFlag.RST | TcpFlag.ACK });
    expect(received(resetReplyTo(incoming(TcpFlag.FIN, 10), LOCAL, PEER))).toMatchObject({ acknowledgment: 5011 });
    expect(received(resetReplyTo({ ...incoming(0, 10), sequence: 0xffff_fffe }, LOCAL, PEER))).toMatchObject({ acknowledgment: 8 });
  });

  it('a connection’s own reset carries its sequence and acknowledgment numbers, RST and ACK set, and no options', () => {
    const bytes = resetSegment(LOCAL, 80, PEER, 40000, 123, 456);
    expect(bytes).toHaveLength(20);
    expect(received(bytes)).toMatchObject({ sequence: 123, acknowledgment: 456, flags: TcpFlag.RST | TcpFlag.ACK, window: 0 });
  });
});

describe('the per-second rate limit (RFC 5961 §7, RFC 9293 §3.10.7.1 resets)', () => {
  it('allows `limit` events in a second, refuses the rest, and allows again a second after the first', () => {
    const limit = new RateLimit(3);
    expect([0, 100, 200, 300, 999].map((t) => limit.allow(t))).toEqual([true, true, true, false, false]);
    expect(limit.allow(1000)).toBe(true);
    expect(limit.allow(1500)).toBe(true);
    expect(limit.allow(1600)).toBe(true);
    expect(limit.allow(1999)).toBe(false);
  });

  it('a refused event does not count', () => {
    const limit = new RateLimit(1);
    expect(limit.allow(0)).toBe(true);
    for (let t = 1; t < 1000; t += 100) expect(limit.allow(t)).toBe(false);
    expect(limit.allow(1000)).toBe(true);
  });
});
