import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import dnsPacket from 'dns-packet';
import {
  DNS_CLASS_IN,
  DnsRcode,
  DnsType,
  emitDnsMessage,
  emitDnsQuery,
  formatIpv6,
  MAX_UDP_MESSAGE,
  nameToLabels,
  parseDnsMessage,
  type DnsMessage,
} from '../../src/app/dns/wire.js';
import { parseIpv4 } from '../../src/wire/address.js';

function parsed(bytes: Uint8Array, max?: number): DnsMessage {
  const result = parseDnsMessage(bytes, max);
  if (!result.ok) throw new Error(`unexpected parse failure: ${result.reason}`);
  return result.message;
}

/** A header with the given counts followed by `body`. */
function message(counts: [number, number, number, number], body: number[], flags = 0x8180): Uint8Array {
  return Uint8Array.from([0x12, 0x34, flags >> 8, flags & 0xff, 0, counts[0], 0, counts[1], 0, counts[2], 0, counts[3], ...body]);
}

describe('RFC 1035 §4.1 message format', () => {
  it('a query for an A record is a 12-octet header with RD set and one IN question', () => {
    const q = emitDnsQuery(0xbeef, 'www.example.com', DnsType.A);
    expect(Array.from(q.subarray(0, 12))).toEqual([0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(q.subarray(12))).toEqual([3, 119, 119, 119, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 0, 1, 0, 1]);
    // and dns-packet, an independent implementation, reads the same thing
    const theirs = dnsPacket.decode(Buffer.from(q));
    expect(theirs.id).toBe(0xbeef);
    expect(theirs.questions).toEqual([{ name: 'www.example.com', type: 'A', class: 'IN' }]);
  });

  it('reads a response written by dns-packet, with compression, CNAME, A, AAAA and SOA', () => {
    const bytes = dnsPacket.encode({
      id: 7,
      type: 'response',
      flags: dnsPacket.RECURSION_DESIRED | 0x80,
      questions: [{ type: 'A', name: 'www.example.com' }],
      answers: [
        { type: 'CNAME', name: 'www.example.com', ttl: 60, data: 'web.example.com' },
        { type: 'A', name: 'web.example.com', ttl: 30, data: '192.0.2.7' },
        { type: 'AAAA', name: 'web.example.com', ttl: 30, data: '2001:db8::7' },
      ],
      authorities: [
        {
          type: 'SOA',
          name: 'example.com',
          ttl: 900,
          data: { mname: 'ns.example.com', rname: 'root.example.com', serial: 5, refresh: 1, retry: 2, expire: 3, minimum: 120 },
        },
      ],
    });
    const m = parsed(bytes);
    expect(m).toMatchObject({ id: 7, response: true, recursionDesired: true, recursionAvailable: true, rcode: 0 });
    expect(m.answers[0]).toMatchObject({ name: 'www.example.com', type: DnsType.CNAME, ttl: 60, data: { kind: 'name', name: 'web.example.com' } });
    expect(m.answers[1]).toMatchObject({ type: DnsType.A, data: { kind: 'a', address: parseIpv4('192.0.2.7') } });
    const aaaa = m.answers[2]!.data;
    expect(aaaa.kind === 'aaaa' && formatIpv6(aaaa.address)).toBe('2001:db8::7');
    expect(m.authorities[0]!.data).toEqual({
      kind: 'soa',
      soa: { mname: 'ns.example.com', rname: 'root.example.com', serial: 5, refresh: 1, retry: 2, expire: 3, minimum: 120 },
    });
  });

  it('what it emits, dns-packet decodes (compressed names included)', () => {
    const bytes = emitDnsMessage({
      id: 99,
      response: true,
      authoritative: true,
      rcode: DnsRcode.NXDOMAIN,
      questions: [{ name: 'nope.lab.test', type: DnsType.A, class: DNS_CLASS_IN }],
      answers: [{ name: 'a.lab.test', type: DnsType.CNAME, class: DNS_CLASS_IN, ttl: 5, data: { kind: 'name', name: 'b.lab.test' } }],
      authorities: [
        {
          name: 'lab.test',
          type: DnsType.SOA,
          class: DNS_CLASS_IN,
          ttl: 60,
          data: { kind: 'soa', soa: { mname: 'ns.lab.test', rname: 'hostmaster.lab.test', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 30 } },
        },
      ],
    });
    const theirs = dnsPacket.decode(Buffer.from(bytes));
    expect(theirs.rcode).toBe('NXDOMAIN');
    expect(theirs.answers?.[0]).toMatchObject({ name: 'a.lab.test', data: 'b.lab.test' });
    expect(theirs.authorities?.[0]?.data).toMatchObject({ mname: 'ns.lab.test', minimum: 30 });
    // compression made it shorter than spelling every name out
    expect(bytes.length).toBeLessThan(12 + 15 + 4 + 50 + 80);
  });

  it('RFC 2181 §8: a TTL with the top bit set is read as zero', () => {
    const m = parsed(message([0, 1, 0, 0], [0, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 1, 2, 3, 4]));
    expect(m.answers[0]!.ttl).toBe(0);
  });

  it('RFC 4343: labels with dots or odd bytes are escaped, and escape back to the same octets', () => {
    const labels = nameToLabels('a\\.b.c\\000d');
    expect(labels?.map((l) => Array.from(l))).toEqual([[97, 46, 98], [99, 0, 100]]);
    const bytes = emitDnsQuery(1, 'a\\.b.c\\000d', DnsType.A);
    expect(parsed(bytes).questions[0]!.name).toBe('a\\.b.c\\000d');
  });

  it('a query is byte for byte the one-question message emitDnsMessage writes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.array(fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/), { minLength: 1, maxLength: 5 }), fc.constantFrom(DnsType.A, DnsType.AAAA, 255), (id, labels, type) => {
        const name = labels.join('.');
        expect(emitDnsQuery(id, name, type)).toEqual(emitDnsMessage({ id, recursionDesired: true, questions: [{ name, type, class: DNS_CLASS_IN }] }));
      }),
      { numRuns: 300, seed: 9 },
    );
    expect(() => emitDnsQuery(1, 'a..b', DnsType.A)).toThrow(expect.objectContaining({ code: 'EBADNAME' }));
  });

  it('rejects names that cannot be encoded', () => {
    expect(nameToLabels('a..b')).toBeUndefined();
    expect(nameToLabels('x'.repeat(64))).toBeUndefined();
    expect(nameToLabels(Array(130).fill('ab').join('.'))).toBeUndefined();
    expect(nameToLabels('héllo')).toBeUndefined();
  });

  it('a plain name and the same name written with escapes give the same labels, or are refused alike, up to the 255-octet limit', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,63}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 8 }), fc.boolean(), (labels, trailingDot) => {
        const plain = labels.join('.') + (trailingDot ? '.' : '');
        // the first octet written as \DDD takes the escape-aware path
        const escaped = `\\${String(plain.charCodeAt(0)).padStart(3, '0')}${plain.slice(1)}`;
        const a = nameToLabels(plain)?.map((l) => Array.from(l));
        const b = nameToLabels(escaped)?.map((l) => Array.from(l));
        expect(a).toEqual(b);
        const wireLength = labels.reduce((n, l) => n + l.length + 1, 1);
        expect(a === undefined).toBe(wireLength > 255);
      }),
      { numRuns: 400, seed: 5 },
    );
    expect(nameToLabels('x'.repeat(63) + '.' + 'y'.repeat(63) + '.' + 'z'.repeat(63) + '.' + 'w'.repeat(61))).toHaveLength(4); // 255 octets
    expect(nameToLabels('x'.repeat(63) + '.' + 'y'.repeat(63) + '.' + 'z'.repeat(63) + '.' + 'w'.repeat(62))).toBeUndefined(); // 256
  });
});

describe('malformed messages are rejected with a reason, never an exception', () => {
  it('fewer than 12 octets: truncated', () => {
    expect(parseDnsMessage(new Uint8Array(11))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('a count promising more records than there are octets: truncated', () => {
    expect(parseDnsMessage(message([0, 3, 0, 0], [0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]))).toMatchObject({ reason: 'truncated' });
  });

  it('over 512 octets on UDP: oversized (RFC 1035 §4.2.1)', () => {
    expect(parseDnsMessage(new Uint8Array(513), MAX_UDP_MESSAGE)).toMatchObject({ reason: 'oversized' });
  });

  it('a pointer to itself (the classic compression loop): bad-pointer', () => {
    // question name at offset 12 is a pointer to offset 12
    expect(parseDnsMessage(message([1, 0, 0, 0], [0xc0, 12, 0, 1, 0, 1]))).toMatchObject({ reason: 'bad-pointer' });
  });

  it('two pointers pointing at each other: bad-pointer', () => {
    // offset 12: label "a" then pointer to 17; offset 17: pointer to 12
    const body = [1, 97, 0xc0, 17, 0, 0xc0, 12, 0, 1, 0, 1];
    expect(parseDnsMessage(message([1, 0, 0, 0], body))).toMatchObject({ reason: 'bad-pointer' });
  });

  it('a forward pointer: bad-pointer', () => {
    expect(parseDnsMessage(message([1, 0, 0, 0], [0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 97, 0]))).toMatchObject({ reason: 'bad-pointer' });
  });

  it('a name that expands past 255 octets through backward pointers: name-too-long', () => {
    // Answer 1 (opaque type 99) carries a chain of 63-octet labels, each piece ending in a
    // pointer to the previous piece; answer 2's owner name points at the last piece.
    const rdataAt = 12 + 1 + 10;
    const chain: number[] = [];
    let previous = -1;
    for (let i = 0; i < 6; i++) {
      const here = rdataAt + chain.length;
      chain.push(63, ...Array<number>(63).fill(120));
      if (previous < 0) chain.push(0);
      else chain.push(0xc0 | (previous >> 8), previous & 0xff);
      previous = here;
    }
    const body = [0, 0, 99, 0, 1, 0, 0, 0, 0, chain.length >> 8, chain.length & 0xff, ...chain];
    body.push(0xc0 | (previous >> 8), previous & 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4);
    expect(parseDnsMessage(message([0, 2, 0, 0], body))).toMatchObject({ reason: 'name-too-long' });
  });

  it('label types 01 and 10 are refused: bad-label-type', () => {
    expect(parseDnsMessage(message([1, 0, 0, 0], [0x41, 0, 0, 1, 0, 1]))).toMatchObject({ reason: 'bad-label-type' });
  });

  it('an A record whose RDATA is not 4 octets: bad-rdata', () => {
    expect(parseDnsMessage(message([0, 1, 0, 0], [0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]))).toMatchObject({ reason: 'bad-rdata' });
  });

  it('a CNAME whose name runs past RDLENGTH: bad-rdata', () => {
    expect(parseDnsMessage(message([0, 1, 0, 0], [0, 0, 5, 0, 1, 0, 0, 0, 1, 0, 1, 1, 97, 0]))).toMatchObject({ reason: 'bad-rdata' });
  });

  it('fuzz: random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const result = parseDnsMessage(bytes);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });

  it('fuzz: a valid header with random sections, and random pointer bytes, never throws', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.oneof(fc.constantFrom(0xc0, 0xc0, 0, 1, 3, 63, 0x40, 0x80), fc.integer({ min: 0, max: 255 })), { maxLength: 300 }),
        (counts, body) => {
          const result = parseDnsMessage(message(counts as [number, number, number, number], body));
          expect(typeof result.ok).toBe('boolean');
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('fuzz: mutating one byte of a good response never throws', () => {
    const good = dnsPacket.encode({
      id: 1,
      type: 'response',
      questions: [{ type: 'A', name: 'a.example.com' }],
      answers: [
        { type: 'CNAME', name: 'a.example.com', ttl: 1, data: 'b.example.com' },
        { type: 'A', name: 'b.example.com', ttl: 1, data: '10.0.0.1' },
      ],
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const copy = Uint8Array.from(good);
        copy[at] = value;
        expect(typeof parseDnsMessage(copy).ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });

  it('round trip: what it emits it parses back the same', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 0xffff }), fc.nat(0x7fffffff), fc.nat(0xffffffff), (labels, id, ttl, address) => {
        const name = labels.join('.');
        const bytes = emitDnsMessage({
          id,
          response: true,
          questions: [{ name, type: DnsType.A, class: DNS_CLASS_IN }],
          answers: [{ name, type: DnsType.A, class: DNS_CLASS_IN, ttl, data: { kind: 'a', address } }],
        });
        const m = parsed(bytes);
        expect(m.id).toBe(id);
        expect(m.questions[0]!.name).toBe(name);
        expect(m.answers[0]).toEqual({ name, type: DnsType.A, class: DNS_CLASS_IN, ttl, data: { kind: 'a', address } });
      }),
    );
  });
});

describe('RFC 5952 IPv6 text', () => {
  it('compresses the longest zero run and writes lower case', () => {
    const b = new Uint8Array(16);
    b[0] = 0x20;
    b[1] = 0x01;
    b[2] = 0x0d;
    b[3] = 0xb8;
    b[15] = 1;
    expect(formatIpv6(b)).toBe('2001:db8::1');
    expect(formatIpv6(new Uint8Array(16))).toBe('::');
  });
});
