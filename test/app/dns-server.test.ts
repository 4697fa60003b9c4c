import { beforeEach, describe, expect, it } from 'vitest';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import { DNS_CLASS_IN, DnsRcode, DnsType, emitDnsMessage, emitDnsQuery, parseDnsMessage, type DnsMessage } from '../../src/app/dns/wire.js';
import { parseIpv4 } from '../../src/wire/address.js';
import { FakeNetwork } from './fake-network.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';

let server: DnsAuthoritativeServer;

beforeEach(() => {
  const net = new FakeNetwork(new VirtualClock());
  server = new DnsAuthoritativeServer({
    transport: net.host('ns', parseIpv4('192.0.2.53')),
    zone: 'lab.test',
    soa: { minimum: 45, ttl: 600 },
    records: [
      { name: 'lab.test', type: 'A', address: '192.0.2.1' },
      { name: 'www.lab.test', type: 'A', address: '192.0.2.80', ttl: 120 },
      { name: 'alias.lab.test', type: 'CNAME', target: 'www.lab.test' },
      { name: 'dangling.lab.test', type: 'CNAME', target: 'gone.lab.test' },
      { name: 'outside.lab.test', type: 'CNAME', target: 'example.com' },
    ],
  });
});

function ask(name: string, type: number = DnsType.A): DnsMessage {
  const reply = server.handleQuery(emitDnsQuery(0x1234, name, type));
  const parsed = parseDnsMessage(reply!);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.message;
}

describe('authoritative answers (RFC 1034 §4.3.2)', () => {
  it('answers A with AA set, echoing id, question (and its case) and RD', () => {
    const m = ask('WWW.lab.test');
    expect(m).toMatchObject({ id: 0x1234, response: true, authoritative: true, recursionDesired: true, recursionAvailable: false, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'WWW.lab.test', type: DnsType.A, class: DNS_CLASS_IN }]);
    // the owner name is compressed to the question's spelling (names are case-insensitive)
    expect(m.answers).toEqual([{ name: 'WWW.lab.test', type: DnsType.A, class: DNS_CLASS_IN, ttl: 120, data: { kind: 'a', address: parseIpv4('192.0.2.80') } }]);
  });

  it('follows a CNAME inside the zone and returns both records', () => {
    expect(ask('alias.lab.test').answers.map((r) => r.type)).toEqual([DnsType.CNAME, DnsType.A]);
  });

  it('a CNAME out of the zone is returned alone for the resolver to chase', () => {
    expect(ask('outside.lab.test').answers).toMatchObject([{ type: DnsType.CNAME, data: { name: 'example.com' } }]);
  });

  it('NXDOMAIN carries the SOA in the authority section for negative caching (RFC 2308 §3)', () => {
    const m = ask('nope.lab.test');
    expect(m.rcode).toBe(DnsRcode.NXDOMAIN);
    expect(m.answers).toEqual([]);
    expect(m.authorities).toMatchObject([{ name: 'lab.test', type: DnsType.SOA, ttl: 600, data: { kind: 'soa', soa: { minimum: 45 } } }]);
  });

  it('a CNAME to a missing name is NXDOMAIN with the CNAME kept (RFC 2308 §2.1)', () => {
    const m = ask('dangling.lab.test');
    expect(m.rcode).toBe(DnsRcode.NXDOMAIN);
    expect(m.answers.map((r) => r.type)).toEqual([DnsType.CNAME]);
  });

  it('NODATA: NOERROR, no answers, SOA in authority (RFC 2308 §2.2)', () => {
    const m = ask('www.lab.test', DnsType.AAAA);
    expect(m.rcode).toBe(DnsRcode.NOERROR);
    expect(m.answers).toEqual([]);
    expect(m.authorities.map((r) => r.type)).toEqual([DnsType.SOA]);
  });

  it('the apex answers SOA queries', () => {
    expect(ask('lab.test', DnsType.SOA).answers.map((r) => r.type)).toEqual([DnsType.SOA]);
  });

  it('names outside the zone are REFUSED (no recursion)', () => {
    const m = ask('example.com');
    expect(m.rcode).toBe(DnsRcode.REFUSED);
    expect(server.stats.refused).toBe(1);
  });

  it('an opcode other than QUERY is NOTIMP; two questions are FORMERR', () => {
    const notify = emitDnsMessage({ id: 1, opcode: 4, questions: [{ name: 'lab.test', type: DnsType.SOA, class: 1 }] });
    expect(parseDnsMessage(server.handleQuery(notify)!)).toMatchObject({ message: { rcode: DnsRcode.NOTIMP, opcode: 4 } });
    const two = emitDnsMessage({ id: 2, questions: [{ name: 'a.lab.test', type: 1, class: 1 }, { name: 'b.lab.test', type: 1, class: 1 }] });
    expect(parseDnsMessage(server.handleQuery(two)!)).toMatchObject({ message: { rcode: DnsRcode.FORMERR } });
  });

  it('an unparseable query with a readable header is answered FORMERR; a response or a runt is dropped', () => {
    const loop = Uint8Array.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseDnsMessage(server.handleQuery(loop)!)).toMatchObject({ message: { id: 9, rcode: DnsRcode.FORMERR } });
    expect(server.handleQuery(emitDnsMessage({ id: 3, response: true }))).toBeUndefined();
    expect(server.handleQuery(new Uint8Array(5))).toBeUndefined();
    expect(server.stats.drops).toEqual({ 'bad-pointer': 1, response: 1, 'header-too-short': 1 });
  });

  it('an answer too big for 512 octets is sent truncated (TC) without records (RFC 2181 §9)', () => {
    for (let i = 0; i < 40; i++) server.addRecord({ name: 'many.lab.test', type: 'A', address: parseIpv4('10.0.0.0') + i });
    const bytes = server.handleQuery(emitDnsQuery(5, 'many.lab.test', DnsType.A))!;
    expect(bytes.length).toBeLessThanOrEqual(512);
    expect(parseDnsMessage(bytes)).toMatchObject({ message: { truncated: true, answers: [] } });
    // over TCP the full answer fits
    const full = parseDnsMessage(server.handleQuery(emitDnsQuery(5, 'many.lab.test', DnsType.A), 65_535)!);
    expect(full.ok && full.message.answers).toHaveLength(40);
  });

  it('records can be removed', () => {
    server.removeRecords('www.lab.test', 'A');
    expect(ask('www.lab.test').rcode).toBe(DnsRcode.NXDOMAIN);
  });

  it('refuses records outside its zone', () => {
    expect(() => server.addRecord({ name: 'x.example.com', type: 'A', address: '1.2.3.4' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
