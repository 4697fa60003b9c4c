import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeFrame, formatSummary } from '../../src/capture/decode.js';
import { formatCaptureTime } from '../../src/capture/text-log.js';
import { arpReply, arpRequest, echo, fragmentedEcho, tcp, udp } from './frames.js';

const line = (frame: Uint8Array) => formatSummary(decodeFrame(frame));

describe('one-line frame summaries, tcpdump style', () => {
  it('ARP who-has and is-at', () => {
    expect(line(arpRequest())).toBe('02:00:00:00:00:0a > ff:ff:ff:ff:ff:ff, ARP, Request who-has 192.0.2.1 tell 192.0.2.10, length 42');
    expect(line(arpReply())).toBe('02:00:00:00:00:0b > 02:00:00:00:00:0a, ARP, Reply 192.0.2.1 is-at 02:00:00:00:00:0b, length 42');
  });

  it('ICMP echo with id and seq', () => {
    expect(line(echo('echo-request', 0x77, 3))).toBe('02:00:00:00:00:0a > 02:00:00:00:00:0b, IPv4, 192.0.2.10 > 192.0.2.1: ICMP echo request, id 119, seq 3, length 64');
    expect(line(echo('echo-reply', 0x77, 3))).toContain('192.0.2.1 > 192.0.2.10: ICMP echo reply, id 119, seq 3, length 64');
  });

  it('UDP ports and payload length', () => {
    expect(line(udp(5353, 53, new Uint8Array(20)))).toContain('192.0.2.10.5353 > 192.0.2.1.53: UDP, length 20');
  });

  it('TCP flags, seq, ack, window and length', () => {
    expect(line(tcp(0x02, 1000, 0, 65535))).toContain('192.0.2.10.49152 > 192.0.2.1.80: Flags [S], seq 1000, ack 0, win 65535, length 0');
    expect(line(tcp(0x18, 1001, 5001, 512, new Uint8Array(10)))).toContain('Flags [P.], seq 1001, ack 5001, win 512, length 10');
    expect(line(tcp(0x11, 1, 2, 3))).toContain('Flags [F.]');
  });

  it('IP fragments: the first decodes its transport header, the rest only say where they belong', () => {
    const [first, second] = fragmentedEcho();
    expect(line(first)).toContain('ICMP echo request, id 7, seq 1, length 512 (frag id 16962 offset 0+)');
    expect(line(second)).toMatch(/192\.0\.2\.10 > 192\.0\.2\.1: proto 1, length 508 \(frag id 16962 offset 512\)$/);
  });

  it('reports bad checksums without hiding the frame', () => {
    const frame = udp(1, 2, new Uint8Array(8));
    frame[frame.length - 1]! ^= 0xff;
    expect(line(frame)).toContain('UDP, length 8 [bad udp cksum]');
    const ip = echo('echo-request', 1, 1);
    ip[14 + 8]! ^= 1; // TTL
    expect(line(ip)).toContain('[bad ip cksum]');
    const segment = tcp(0x10, 1, 2, 3, new Uint8Array(4));
    segment[segment.length - 1]! ^= 1;
    expect(line(segment)).toContain('length 4 [bad tcp cksum]');
    expect(line(tcp(0x10, 1, 2, 3, new Uint8Array(4)))).not.toContain('bad');
  });

  it('says where a malformed frame stops parsing', () => {
    expect(line(arpRequest().subarray(0, 30))).toContain('[arp: truncated]');
    expect(line(echo('echo-request', 1, 1).subarray(0, 20))).toContain('[ipv4: truncated]');
    expect(line(new Uint8Array(5))).toBe('? > ?, ethertype 0x0000, length 5 [ethernet: truncated]');
    const ipv6 = new Uint8Array(60);
    ipv6[12] = 0x86;
    ipv6[13] = 0xdd;
    expect(line(ipv6)).toContain(', IPv6, length 60');
  });

  it('never throws, whatever the bytes', () => {
    const [first] = fragmentedEcho();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 200 }), (noise, cut) => {
        const frame = first.slice(0, Math.max(cut, 0));
        // Keep the headers up to the noise's start, so the noise lands in every layer in turn.
        const start = Math.min(14 + (noise[0] ?? 0) % 40, frame.length);
        frame.set(noise.subarray(0, frame.length - start), start);
        expect(typeof line(frame)).toBe('string');
        expect(typeof line(noise)).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });

  it('prints UTC time with microseconds', () => {
    expect(formatCaptureTime(Date.UTC(2026, 0, 1, 9, 14, 27) + 0.123)).toBe('09:14:27.000123');
    expect(formatCaptureTime(Date.UTC(2026, 0, 1, 23, 59, 59, 999) + 0.999)).toBe('23:59:59.999999');
  });
});
