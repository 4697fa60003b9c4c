import { describe, expect, it } from 'vitest';
import { compileFilter, FilterError } from '../../src/capture/filter.js';
import { decodeFrame } from '../../src/capture/decode.js';
import { arpReply, arpRequest, echo, fragmentedEcho, tcp, udp } from './frames.js';

/** Frames from 192.0.2.10 (02:…:0a) to 192.0.2.1 (02:…:0b) unless said otherwise. */
const FRAMES = {
  arpRequest: arpRequest(),
  arpReply: arpReply(),
  ping: echo('echo-request', 1, 1),
  pong: echo('echo-reply', 1, 1),
  dns: udp(5353, 53, new Uint8Array(20)),
  syn: tcp(0x02, 1000, 0, 65535),
  fragment: fragmentedEcho()[1],
};
type Name = keyof typeof FRAMES;

function matching(expression: string): Name[] {
  const predicate = compileFilter(expression);
  return (Object.keys(FRAMES) as Name[]).filter((name) => predicate(decodeFrame(FRAMES[name])));
}

describe('capture filters (pcap-filter words)', () => {
  it('an empty filter takes every frame', () => {
    expect(matching('')).toHaveLength(Object.keys(FRAMES).length);
  });

  it('protocols', () => {
    expect(matching('tcp')).toEqual(['syn']);
    expect(matching('udp')).toEqual(['dns']);
    expect(matching('icmp')).toEqual(['ping', 'pong', 'fragment']);
    expect(matching('arp')).toEqual(['arpRequest', 'arpReply']);
    expect(matching('broadcast')).toEqual(['arpRequest']);
  });

  it('host matches IP headers and ARP addresses, src/dst pick a side', () => {
    expect(matching('host 192.0.2.1')).toHaveLength(7);
    expect(matching('src host 192.0.2.1')).toEqual(['arpReply', 'pong']);
    expect(matching('dst host 192.0.2.10')).toEqual(['arpReply', 'pong']);
    expect(matching('host 198.51.100.1')).toEqual([]);
  });

  it('ports, with and without a protocol', () => {
    expect(matching('port 53')).toEqual(['dns']);
    expect(matching('dst port 80')).toEqual(['syn']);
    expect(matching('src port 80')).toEqual([]);
    expect(matching('tcp port 53')).toEqual([]);
    expect(matching('udp dst port 53')).toEqual(['dns']);
  });

  it('net and ether', () => {
    expect(matching('src net 192.0.2.8/29 and icmp')).toEqual(['ping', 'fragment']);
    expect(matching('ether src 02:00:00:00:00:0b')).toEqual(['arpReply', 'pong']);
    expect(matching('ether host ff:ff:ff:ff:ff:ff')).toEqual(['arpRequest']);
  });

  it('not binds tighter than and, and tighter than or; parentheses group', () => {
    expect(matching('not arp and not icmp')).toEqual(['dns', 'syn']);
    expect(matching('tcp or udp and port 80')).toEqual(['syn']);
    expect(matching('(tcp or udp) and port 53')).toEqual(['dns']);
    expect(matching('!(icmp || arp) && !port 53')).toEqual(['syn']);
  });

  it('says what is wrong and where', () => {
    const error = (expression: string) => {
      try {
        compileFilter(expression);
      } catch (e) {
        return e as FilterError;
      }
      throw new Error(`'${expression}' compiled`);
    };
    expect(error('host 300.1.1.1').message).toMatch(/not an IPv4 address/);
    expect(error('port http').message).toMatch(/not a port number/);
    expect(error('tcp udp')).toMatchObject({ position: 4 });
    expect(error('(tcp or udp').message).toMatch(/ends where '\)' should follow/);
    expect(error('frobnicate').message).toMatch(/unknown term 'frobnicate'/);
    expect(error('tcp and').message).toMatch(/ends where a term/);
  });
});
