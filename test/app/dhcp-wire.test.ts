import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BOOTP_MINIMUM_LENGTH,
  BOOTREPLY,
  BOOTREQUEST,
  DhcpMessageType,
  emitDhcpMessage,
  maskToPrefixLength,
  parseDhcpMessage,
  type DhcpMessage,
} from '../../src/app/dhcp/wire.js';
import { parseIpv4, parseMac } from '../../src/wire/address.js';

const MAC = parseMac('02:00:00:00:00:01');

function parsed(bytes: Uint8Array): DhcpMessage {
  const r = parseDhcpMessage(bytes);
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.message;
}

/** A BOOTREQUEST fixed part with the cookie, followed by raw option bytes. */
function withOptions(options: number[], op = BOOTREQUEST): Uint8Array {
  const fixed = emitDhcpMessage({ op, xid: 1, chaddr: MAC, options: {} }).slice(0, 240);
  return Uint8Array.from([...fixed, ...options]);
}

describe('RFC 2131 §2 / RFC 2132 message format', () => {
  it('a DHCPDISCOVER is a BOOTP request padded to 300 octets with the magic cookie and option 53 first', () => {
    const bytes = emitDhcpMessage({ op: BOOTREQUEST, xid: 0xdeadbeef, chaddr: MAC, broadcast: true, secs: 3, options: { messageType: DhcpMessageType.DISCOVER } });
    expect(bytes.length).toBe(BOOTP_MINIMUM_LENGTH);
    expect(Array.from(bytes.subarray(0, 12))).toEqual([1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef, 0, 3, 0x80, 0]);
    expect(Array.from(bytes.subarray(28, 34))).toEqual(Array.from(MAC));
    expect(Array.from(bytes.subarray(236, 243))).toEqual([99, 130, 83, 99, 53, 1, 1]);
    expect(bytes[243]).toBe(255);
  });

  it('round-trips every option the client and server use', () => {
    const options = {
      messageType: DhcpMessageType.ACK,
      subnetMask: parseIpv4('255.255.255.0'),
      routers: [parseIpv4('192.0.2.1'), parseIpv4('192.0.2.2')],
      dnsServers: [parseIpv4('192.0.2.53')],
      hostName: 'spinet',
      domainName: 'lab.test',
      broadcastAddress: parseIpv4('192.0.2.255'),
      requestedAddress: parseIpv4('192.0.2.100'),
      leaseTime: 3600,
      serverIdentifier: parseIpv4('192.0.2.1'),
      parameterRequestList: [1, 3, 6, 15, 51, 58, 59],
      message: 'hello',
      maxMessageSize: 576,
      renewalTime: 1800,
      rebindingTime: 3150,
      clientIdentifier: Uint8Array.from([1, ...MAC]),
      other: new Map([[119, Uint8Array.of(3, 108, 97, 98, 0)]]),
    };
    const m = parsed(emitDhcpMessage({ op: BOOTREPLY, xid: 7, chaddr: MAC, yiaddr: parseIpv4('192.0.2.100'), ciaddr: 5, giaddr: 6, siaddr: 8, options }));
    expect(m).toMatchObject({ op: BOOTREPLY, htype: 1, hlen: 6, xid: 7, yiaddr: parseIpv4('192.0.2.100'), ciaddr: 5, giaddr: 6, siaddr: 8, broadcast: false });
    expect(m.options).toEqual(options);
  });

  it('RFC 3396: an option longer than 255 octets is split on emit and joined on parse', () => {
    const long = Uint8Array.from({ length: 600 }, (_, i) => i & 0xff);
    const bytes = emitDhcpMessage({ op: BOOTREPLY, xid: 1, chaddr: MAC, options: { messageType: 5, other: new Map([[224, long]]) } });
    expect(parsed(bytes).options.other?.get(224)).toEqual(long);
  });

  it('RFC 2132 §9.3: options overloaded into the file and sname fields are read', () => {
    const bytes = withOptions([53, 1, 5, 52, 1, 3, 255]);
    bytes.set([51, 4, 0, 0, 0x0e, 0x10, 255], 108); // lease time in 'file'
    bytes.set([54, 4, 192, 0, 2, 1, 255], 44); // server id in 'sname'
    const m = parsed(bytes);
    expect(m.options.leaseTime).toBe(3600);
    expect(m.options.serverIdentifier).toBe(parseIpv4('192.0.2.1'));
  });

  it('tolerates pad octets and a missing END option', () => {
    expect(parsed(withOptions([0, 0, 53, 1, 1, 0])).options.messageType).toBe(1);
  });

  it('netmasks convert to prefix lengths; non-contiguous masks do not', () => {
    expect(maskToPrefixLength(parseIpv4('255.255.255.0'))).toBe(24);
    expect(maskToPrefixLength(0)).toBe(0);
    expect(maskToPrefixLength(0xffffffff)).toBe(32);
    expect(maskToPrefixLength(parseIpv4('255.0.255.0'))).toBeUndefined();
  });
});

describe('malformed DHCP messages are rejected with a reason', () => {
  it('shorter than the 240-octet fixed part: truncated', () => {
    expect(parseDhcpMessage(new Uint8Array(239))).toMatchObject({ ok: false, reason: 'truncated' });
  });
  it('without the magic cookie: bad-magic-cookie', () => {
    const b = withOptions([53, 1, 1, 255]);
    b[236] = 0;
    expect(parseDhcpMessage(b)).toMatchObject({ reason: 'bad-magic-cookie' });
  });
  it('op 3 or hlen 17: bad-header', () => {
    const b = withOptions([53, 1, 1, 255]);
    b[0] = 3;
    expect(parseDhcpMessage(b)).toMatchObject({ reason: 'bad-header' });
    const c = withOptions([53, 1, 1, 255]);
    c[2] = 17;
    expect(parseDhcpMessage(c)).toMatchObject({ reason: 'bad-header' });
  });
  it('an option running past the end: option-overrun', () => {
    expect(parseDhcpMessage(withOptions([53, 1, 1, 3, 8, 1, 2, 3, 4]))).toMatchObject({ reason: 'option-overrun' });
  });
  it('a 3-octet subnet mask or a 5-octet router list: bad-option-length', () => {
    expect(parseDhcpMessage(withOptions([53, 1, 5, 1, 3, 255, 255, 255, 255]))).toMatchObject({ reason: 'bad-option-length' });
    expect(parseDhcpMessage(withOptions([53, 1, 5, 3, 5, 1, 2, 3, 4, 5, 255]))).toMatchObject({ reason: 'bad-option-length' });
  });
  it('no option 53 (plain BOOTP) or type 9: bad-message-type', () => {
    expect(parseDhcpMessage(withOptions([255]))).toMatchObject({ reason: 'bad-message-type' });
    expect(parseDhcpMessage(withOptions([53, 1, 9, 255]))).toMatchObject({ reason: 'bad-message-type' });
  });
  it('an overload option pointing at garbage: option-overrun, not a crash', () => {
    const b = withOptions([53, 1, 5, 52, 1, 1, 255]);
    b.set([3, 200], 108);
    expect(parseDhcpMessage(b)).toMatchObject({ reason: 'option-overrun' });
  });

  it('fuzz: random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), (bytes) => {
        expect(typeof parseDhcpMessage(bytes).ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: a valid fixed part with random options (overload included) never throws', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(0, 1, 3, 6, 12, 50, 51, 52, 53, 54, 55, 61, 255), fc.integer({ min: 0, max: 255 })), { maxLength: 400 }), fc.uint8Array({ minLength: 192, maxLength: 192 }), (options, snameFile) => {
        const b = withOptions(options);
        b.set(snameFile, 44);
        expect(typeof parseDhcpMessage(b).ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });
});
