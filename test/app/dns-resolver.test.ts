import { beforeEach, describe, expect, it, vi } from 'vitest';
import { DnsResolver, type DnsResolverOptions } from '../../src/app/dns/resolver.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import { DNS_CLASS_IN, DnsRcode, DnsType, emitDnsMessage, parseDnsMessage, type DnsMessage, type DnsMessageRepr, type DnsRecord } from '../../src/app/dns/wire.js';
import { frameDnsMessage, createTcpQuery, DnsStreamDeframer, type StreamSocketLike } from '../../src/app/dns/tcp-framing.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { DNS_DEFAULTS } from '../../src/app/dns/options.js';
import { SeededRandom } from '../../src/time/random.js';
import { parseIpv4 } from '../../src/wire/address.js';
import { FakeNetwork, type FakeHost } from './fake-network.js';

const CLIENT = parseIpv4('192.0.2.10');
const NS1 = parseIpv4('192.0.2.53');
const NS2 = parseIpv4('192.0.2.54');

let clock: VirtualClock;
let net: FakeNetwork;
let client: FakeHost;

beforeEach(() => {
  clock = new VirtualClock();
  net = new FakeNetwork(clock);
  client = net.host('client', CLIENT);
});

function resolver(options: Partial<DnsResolverOptions> = {}): DnsResolver {
  return new DnsResolver({ transport: client, clock, random: new SeededRandom(42), servers: [NS1], ...options });
}

/** Run the clock until `promise` settles (or `ms` pass); returns its value or its error. */
async function outcome<T>(promise: Promise<T>, ms = 120_000): Promise<T | (Error & { code?: string })> {
  let settled = false;
  const wrapped = promise.then(
    (v) => v,
    (e: Error) => e,
  );
  void wrapped.finally(() => (settled = true));
  for (let t = 0; t < ms && !settled; t += 50) await clock.advanceAsync(50);
  return wrapped;
}

type Answerer = (query: DnsMessage, raw: Uint8Array) => DnsMessageRepr | Uint8Array | undefined;

/** A scripted server: builds each reply from the query (id and question echoed by default). */
function scriptedServer(address: number, answer: Answerer, port = 53): { queries: DnsMessage[]; host: FakeHost } {
  const host = net.host(`ns-${address}`, address);
  const queries: DnsMessage[] = [];
  const socket = host.open({ port });
  socket.onMessage((data, from) => {
    const parsed = parseDnsMessage(data);
    if (!parsed.ok) return;
    queries.push(parsed.message);
    const reply = answer(parsed.message, data);
    if (!reply) return;
    socket.send(reply instanceof Uint8Array ? reply : emitDnsMessage(reply), from.port, from.address);
  });
  return { queries, host };
}

function a(name: string, address: string, ttl = 300): DnsRecord {
  return { name, type: DnsType.A, class: DNS_CLASS_IN, ttl, data: { kind: 'a', address: parseIpv4(address) } };
}
function cname(name: string, target: string, ttl = 300): DnsRecord {
  return { name, type: DnsType.CNAME, class: DNS_CLASS_IN, ttl, data: { kind: 'name', name: target } };
}
function soa(zone: string, minimum: number, ttl = 3600): DnsRecord {
  return {
    name: zone,
    type: DnsType.SOA,
    class: DNS_CLASS_IN,
    ttl,
    data: { kind: 'soa', soa: { mname: `ns.${zone}`, rname: `h.${zone}`, serial: 1, refresh: 1, retry: 1, expire: 1, minimum } },
  };
}
function reply(q: DnsMessage, extra: Partial<DnsMessageRepr>): DnsMessageRepr {
  return { id: q.id, response: true, recursionDesired: true, recursionAvailable: true, questions: q.questions, ...extra };
}

describe('resolve4 / resolve6 against an authoritative server', () => {
  beforeEach(() => {
    const host = net.host('ns', NS1);
    new DnsAuthoritativeServer({
      transport: host,
      zone: 'lab.test',
      soa: { minimum: 60 },
      records: [
        { name: 'www.lab.test', type: 'A', address: '192.0.2.80', ttl: 120 },
        { name: 'www.lab.test', type: 'A', address: '192.0.2.81', ttl: 120 },
        { name: 'www.lab.test', type: 'AAAA', address: Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), 0x80]) },
        { name: 'alias.lab.test', type: 'CNAME', target: 'www.lab.test', ttl: 30 },
        { name: 'v4.lab.test', type: 'A', address: '192.0.2.4' },
        { name: 'loop1.lab.test', type: 'CNAME', target: 'loop2.lab.test' },
        { name: 'loop2.lab.test', type: 'CNAME', target: 'loop1.lab.test' },
      ],
    }).start();
  });

  it('returns every A record of the name', async () => {
    expect(await outcome(resolver().resolve4('www.lab.test'))).toEqual(['192.0.2.80', '192.0.2.81']);
  });

  it('returns AAAA records in RFC 5952 text', async () => {
    expect(await outcome(resolver().resolve6('www.lab.test'))).toEqual(['2001:db8::80']);
  });

  it('follows a CNAME chain and reports the smallest TTL along it', async () => {
    expect(await outcome(resolver().resolve4('alias.lab.test', { ttl: true }))).toEqual([
      { address: '192.0.2.80', ttl: 30 },
      { address: '192.0.2.81', ttl: 30 },
    ]);
  });

  it('a CNAME loop is a bad response, not a hang', async () => {
    const error = await outcome(resolver().resolve4('loop1.lab.test'));
    expect(error).toMatchObject({ code: 'EBADRESP', syscall: 'queryA', hostname: 'loop1.lab.test' });
  });

  it('NXDOMAIN rejects with ENOTFOUND, shaped like a Node dns error', async () => {
    const error = await outcome(resolver().resolve4('nope.lab.test'));
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'ENOTFOUND', syscall: 'queryA', hostname: 'nope.lab.test', message: 'queryA ENOTFOUND nope.lab.test' });
  });

  it('a name without records of the type rejects with ENODATA; lookup calls that ENOTFOUND like getaddrinfo', async () => {
    const r = resolver();
    expect(await outcome(r.resolve6('v4.lab.test'))).toMatchObject({ code: 'ENODATA', syscall: 'queryAaaa' });
    expect(await outcome(r.lookup('v4.lab.test', { family: 6 }))).toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo' });
  });

  it('names are compared case-insensitively (RFC 4343)', async () => {
    expect(await outcome(resolver().resolve4('WWW.Lab.TEST.'))).toEqual(['192.0.2.80', '192.0.2.81']);
  });
});

describe('lookup (dns.promises.lookup shape)', () => {
  beforeEach(() => {
    scriptedServer(NS1, (q) => {
      const name = q.questions[0]!.name;
      if (name === 'v6only.test' && q.questions[0]!.type === DnsType.AAAA) {
        return reply(q, { answers: [{ name, type: DnsType.AAAA, class: 1, ttl: 60, data: { kind: 'aaaa', address: Uint8Array.from([0xfe, 0x80, ...Array<number>(13).fill(0), 1]) } }] });
      }
      if (name === 'dual.test' && q.questions[0]!.type === DnsType.AAAA) {
        return reply(q, { answers: [{ name, type: DnsType.AAAA, class: 1, ttl: 60, data: { kind: 'aaaa', address: new Uint8Array(16).fill(0x11) } }] });
      }
      if (name === 'dual.test') return reply(q, { answers: [a(name, '192.0.2.1'), a(name, '192.0.2.2')] });
      return reply(q, { authorities: [soa('test', 60)] });
    });
  });

  it('an IPv4 literal is returned without any query', async () => {
    const r = resolver();
    expect(await r.lookup('10.1.2.3')).toEqual({ address: '10.1.2.3', family: 4 });
    expect(await r.lookup('10.1.2.3', { all: true })).toEqual([{ address: '10.1.2.3', family: 4 }]);
    expect(net.log).toHaveLength(0);
  });

  it('localhost is loopback without a query (RFC 6761 §6.3)', async () => {
    expect(await resolver().lookup('localhost')).toEqual({ address: '127.0.0.1', family: 4 });
    expect(net.log).toHaveLength(0);
  });

  it('family 0 returns the first A record; all returns A then AAAA', async () => {
    const r = resolver();
    expect(await outcome(r.lookup('dual.test'))).toEqual({ address: '192.0.2.1', family: 4 });
    expect(await outcome(r.lookup('dual.test', { all: true }))).toEqual([
      { address: '192.0.2.1', family: 4 },
      { address: '192.0.2.2', family: 4 },
      { address: '1111:1111:1111:1111:1111:1111:1111:1111', family: 6 },
    ]);
  });

  it('family 0 falls back to AAAA when the name has no A records', async () => {
    expect(await outcome(resolver().lookup('v6only.test'))).toEqual({ address: 'fe80::1', family: 6 });
  });

  it('family 4 never asks for AAAA', async () => {
    expect(await outcome(resolver().lookup('v6only.test', { family: 4 }))).toMatchObject({ code: 'ENOTFOUND' });
    expect(net.sentTo(53).map((d) => parseDnsMessage(d.data)).every((m) => m.ok && m.message.questions[0]!.type === DnsType.A)).toBe(true);
  });

  it('an invalid name rejects with EBADNAME without a query', async () => {
    expect(await outcome(resolver().resolve4('a..b'))).toMatchObject({ code: 'EBADNAME' });
    expect(await outcome(resolver().resolve4('x'.repeat(64) + '.test'))).toMatchObject({ code: 'EBADNAME' });
    expect(net.log).toHaveLength(0);
  });
});

describe('source ports already taken', () => {
  it('a random port another socket holds (EADDRINUSE) is skipped for the next random one, and the query goes out at once', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, '192.0.2.80')] }));
    // The first two ports the resolver will draw, found with the same seed, are taken beforehand.
    const probe = new SeededRandom(42);
    probe.u32(); // the query's id is drawn first
    const first = DNS_DEFAULTS.sourcePortMin + Math.floor((probe.u32() / 0x1_0000_0000) * (DNS_DEFAULTS.sourcePortMax - DNS_DEFAULTS.sourcePortMin + 1));
    const second = DNS_DEFAULTS.sourcePortMin + Math.floor((probe.u32() / 0x1_0000_0000) * (DNS_DEFAULTS.sourcePortMax - DNS_DEFAULTS.sourcePortMin + 1));
    client.open({ port: first });
    client.open({ port: second });
    const tried: (number | undefined)[] = [];
    const r = resolver({ transport: { open: (options) => (tried.push(options.port), client.open(options)) } });
    const start = clock.now();
    expect(await outcome(r.resolve4('a.test'))).toEqual(['192.0.2.80']);
    expect(tried).toHaveLength(3);
    expect(tried.slice(0, 2)).toEqual([first, second]);
    expect(clock.now() - start).toBeLessThan(DNS_DEFAULTS.initialTimeoutMs);
    const sent = net.sentTo(53);
    expect(sent).toHaveLength(1);
    expect([first, second]).not.toContain(sent[0]!.from.port);
    expect(r.stats.timeouts).toBe(0);
  });
});

describe('source ports kept for reuse (queriesPerPort)', () => {
  it('a port carries up to queriesPerPort queries one after another, then closes; the next query opens a fresh one', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, '192.0.2.80')] }));
    const r = resolver({ queriesPerPort: 3, cacheEntries: 0 });
    for (let i = 0; i < 7; i++) expect(await outcome(r.resolve4(`h${i}.test`))).toEqual(['192.0.2.80']);
    const ports = net.sentTo(53).map((d) => d.from.port);
    expect(ports).toHaveLength(7);
    // 3 + 3 + 1: each port closed after its third query
    expect(ports.slice(0, 3).every((p) => p === ports[0])).toBe(true);
    expect(ports.slice(3, 6).every((p) => p === ports[3])).toBe(true);
    expect(new Set(ports).size).toBe(3);
    expect(client.openPorts).toHaveLength(1);
    expect(r.idlePorts).toBe(1);
    // every query still has its own random id
    const ids = net.sentTo(53).map((d) => {
      const parsed = parseDnsMessage(d.data);
      return parsed.ok ? parsed.message.id : -1;
    });
    expect(new Set(ids).size).toBe(7);
  });

  it('concurrent queries never share a port (RFC 5452 §9.2), and each gets its own answer', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, q.questions[0]!.name.startsWith('x') ? '192.0.2.1' : '192.0.2.2')] }));
    const r = resolver({ queriesPerPort: 100, cacheEntries: 0 });
    for (let round = 0; round < 3; round++) {
      const names = Array.from({ length: 8 }, (_, i) => `${i % 2 ? 'x' : 'y'}${round}-${i}.test`);
      const results = await outcome(Promise.all(names.map((n) => r.resolve4(n))));
      expect(results).toEqual(names.map((n) => [n.startsWith('x') ? '192.0.2.1' : '192.0.2.2']));
      const batch = net.sentTo(53).slice(round * 8);
      expect(new Set(batch.map((d) => d.from.port)).size).toBe(8);
    }
    // the second and third rounds took ports from the pool instead of opening new ones
    expect(new Set(net.sentTo(53).map((d) => d.from.port)).size).toBe(8);
  });

  it('an idle port closes after portIdleMs; cancel() closes the idle ones at once', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, '192.0.2.80')] }));
    const r = resolver({ queriesPerPort: 10, cacheEntries: 0 });
    await outcome(r.resolve4('a.test'));
    expect(client.openPorts).toHaveLength(1);
    await clock.advanceAsync(DNS_DEFAULTS.portIdleMs + 10);
    expect(client.openPorts).toEqual([]);
    expect(r.idlePorts).toBe(0);
    await outcome(r.resolve4('b.test'));
    expect(client.openPorts).toHaveLength(1);
    r.cancel();
    expect(client.openPorts).toEqual([]);
  });

  it('a late duplicate reaching a port between queries is a counted drop, and does not answer the next query', async () => {
    let first = true;
    scriptedServer(NS1, (q) => {
      const answer = reply(q, { answers: [a(q.questions[0]!.name, first ? '192.0.2.1' : '192.0.2.2')] });
      if (first) {
        first = false;
        const query = net.sentTo(53).at(-1)!;
        // the same reply again, 5 ms later: it lands after the query is over
        clock.schedule(5, () => net.inject({ address: NS1, port: 53 }, query.from, emitDnsMessage(answer)));
      }
      return answer;
    });
    const r = resolver({ queriesPerPort: 10, cacheEntries: 0 });
    expect(await outcome(r.resolve4('a.test'))).toEqual(['192.0.2.1']);
    await clock.advanceAsync(20);
    expect(r.stats.drops).toEqual({ 'between-queries': 1 });
    expect(await outcome(r.resolve4('a.test'))).toEqual(['192.0.2.2']);
  });

  it('a port that heard ICMP port unreachable is closed, not pooled', async () => {
    net.refuseClosedPorts = true;
    const r = resolver({ queriesPerPort: 10, attempts: 1 });
    expect(await outcome(r.resolve4('a.test'))).toMatchObject({ code: 'ECONNREFUSED' });
    expect(client.openPorts).toEqual([]);
    expect(r.idlePorts).toBe(0);
  });
});

describe('queries sharing a port (concurrentPerPort)', () => {
  const idOf = (data: Uint8Array): number => (data[0]! << 8) | data[1]!;
  /** Where each query went: source port and id, in sending order. */
  const sent = (): { port: number; id: number; name: string }[] =>
    net.sentTo(53).map((d) => {
      const parsed = parseDnsMessage(d.data);
      return { port: d.from.port, id: idOf(d.data), name: parsed.ok ? parsed.message.questions[0]!.name : '' };
    });
  const addressFor = (name: string): string => `192.0.2.${100 + Number(/\d+/.exec(name)![0])}`;

  it('up to concurrentPerPort queries share a port and no more; each has an id of its own there, and same-name asks are one query', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, addressFor(q.questions[0]!.name))] }));
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 4, cacheEntries: 0 });
    const names = Array.from({ length: 10 }, (_, i) => `h${i}.test`);
    const asks = [...names, 'H3.test', 'h3.TEST'].map((n) => r.resolve4(n));
    expect(await outcome(Promise.all(asks))).toEqual([...names, 'h3.test', 'h3.test'].map((n) => [addressFor(n)]));
    const queries = sent();
    // RFC 5452 §5: the two extra asks for h3 joined its query in flight
    expect(queries).toHaveLength(10);
    const byPort = new Map<number, number[]>();
    for (const q of queries) byPort.set(q.port, [...(byPort.get(q.port) ?? []), q.id]);
    expect([...byPort.values()].map((ids) => ids.length)).toEqual([4, 4, 2]);
    for (const ids of byPort.values()) expect(new Set(ids).size).toBe(ids.length);
    // all answered: the three ports wait in the pool
    expect(r.idlePorts).toBe(3);
    expect(client.openPorts).toHaveLength(3);
    expect(r.stats.drops).toEqual({});
  });

  it('with the default of 1, concurrent queries still get a port each', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, addressFor(q.questions[0]!.name))] }));
    const r = resolver({ queriesPerPort: 100, cacheEntries: 0 });
    await outcome(Promise.all(Array.from({ length: 5 }, (_, i) => r.resolve4(`h${i}.test`))));
    expect(new Set(sent().map((q) => q.port)).size).toBe(5);
  });

  it('an id drawn that a query on the port already has is drawn again', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, addressFor(q.questions[0]!.name))] }));
    // the first three draws (an id, the port, the next id) are all the same number
    const seeded = new SeededRandom(7);
    let draws = 0;
    const r = resolver({ random: { u32: () => (draws++ < 3 ? 0x1234_5678 : seeded.u32()) }, queriesPerPort: 100, concurrentPerPort: 4, cacheEntries: 0 });
    expect(await outcome(Promise.all([r.resolve4('d1.test'), r.resolve4('d2.test')]))).toEqual([['192.0.2.101'], ['192.0.2.102']]);
    const queries = sent();
    expect(queries[0]!.port).toBe(queries[1]!.port);
    expect(queries[0]!.id).toBe(0x5678);
    expect(queries[1]!.id).not.toBe(0x5678);
  });

  it('replies in reverse order each reach their own query', async () => {
    const held: DnsMessage[] = [];
    const { host } = scriptedServer(NS1, (q) => {
      held.push(q);
      if (held.length < 8) return undefined;
      const to = net.sentTo(53).at(-1)!.from;
      for (const h of held.reverse()) net.inject({ address: NS1, port: 53 }, to, emitDnsMessage(reply(h, { answers: [a(h.questions[0]!.name, addressFor(h.questions[0]!.name))] })), host.name);
      return undefined;
    });
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 8, cacheEntries: 0 });
    const names = Array.from({ length: 8 }, (_, i) => `r${i}.test`);
    expect(await outcome(Promise.all(names.map((n) => r.resolve4(n))))).toEqual(names.map((n) => [addressFor(n)]));
    expect(new Set(sent().map((q) => q.port)).size).toBe(1);
    expect(r.stats.repliesAccepted).toBe(8);
    expect(r.stats.drops).toEqual({});
  });

  it('a reply with one query’s id and another’s question is dropped and counted, as is one with no outstanding id; the genuine replies still win', async () => {
    const held: DnsMessage[] = [];
    scriptedServer(NS1, (q) => {
      held.push(q);
      if (held.length < 2) return undefined;
      const [qa, qb] = held as [DnsMessage, DnsMessage];
      const to = net.sentTo(53).at(-1)!.from;
      const spoof = (id: number, questionOf: DnsMessage): Uint8Array =>
        emitDnsMessage({ ...reply(questionOf, { answers: [a(questionOf.questions[0]!.name, '6.6.6.6')] }), id });
      let unused = 0;
      while (unused === qa.id || unused === qb.id) unused++;
      // the right ids with each other's questions, then a right question with an id nobody has
      net.inject({ address: NS1, port: 53 }, to, spoof(qa.id, qb));
      net.inject({ address: NS1, port: 53 }, to, spoof(qb.id, qa));
      net.inject({ address: NS1, port: 53 }, to, spoof(unused, qa));
      // a datagram too short to carry an id
      net.inject({ address: NS1, port: 53 }, to, Uint8Array.of(1));
      for (const h of held) net.inject({ address: NS1, port: 53 }, to, emitDnsMessage(reply(h, { answers: [a(h.questions[0]!.name, addressFor(h.questions[0]!.name))] })));
      return undefined;
    });
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 2, cacheEntries: 0 });
    expect(await outcome(Promise.all([r.resolve4('s1.test'), r.resolve4('s2.test')]))).toEqual([['192.0.2.101'], ['192.0.2.102']]);
    expect(new Set(sent().map((q) => q.port)).size).toBe(1);
    expect(r.stats.drops).toMatchObject({ 'wrong-question': 2, 'wrong-id': 1 });
    expect(Object.values(r.stats.drops).reduce((x, y) => x + y)).toBe(4);
    expect(r.stats.repliesAccepted).toBe(2);
  });

  it('one query timing out on a shared port leaves the others waiting; its retry shares the port with a new id, and its late reply is a counted drop', async () => {
    // t1 is never answered the first time; t2 (sent 500 ms later) is answered after 900 ms, past t1's timeout
    let t1Asked = 0;
    scriptedServer(NS1, (q) => {
      const name = q.questions[0]!.name;
      const answer = reply(q, { answers: [a(name, addressFor(name))] });
      if (name === 't1.test' && t1Asked++ === 0) {
        const to = net.sentTo(53).at(-1)!.from;
        clock.schedule(1_200, () => net.inject({ address: NS1, port: 53 }, to, emitDnsMessage(answer)));
        return undefined;
      }
      if (name === 't2.test') {
        const to = net.sentTo(53).at(-1)!.from;
        clock.schedule(900, () => net.inject({ address: NS1, port: 53 }, to, emitDnsMessage(answer)));
        return undefined;
      }
      return answer;
    });
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 4, cacheEntries: 0 });
    const first = r.resolve4('t1.test');
    await clock.advanceAsync(500);
    const second = r.resolve4('t2.test');
    expect(await outcome(Promise.all([first, second]))).toEqual([['192.0.2.101'], ['192.0.2.102']]);
    await clock.advanceAsync(2_000);
    const queries = sent();
    expect(queries.map((q) => q.name)).toEqual(['t1.test', 't2.test', 't1.test']);
    expect(new Set(queries.map((q) => q.port)).size).toBe(1);
    expect(queries[2]!.id).not.toBe(queries[0]!.id);
    expect(r.stats.timeouts).toBe(1);
    expect(r.stats.drops).toEqual({ 'wrong-id': 1 });
  });

  it('the port goes to the pool when its last query ends, and closes after queriesPerPort queries', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, addressFor(q.questions[0]!.name))] }));
    // replies 100, 200, 300 ms after their queries
    let n = 0;
    net.impair = (d) => (d.from.port === 53 ? { delayMs: 100 * ++n } : 'deliver');
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 4, cacheEntries: 0 });
    const asks = Array.from({ length: 3 }, (_, i) => r.resolve4(`p${i}.test`));
    await clock.advanceAsync(150);
    // one answered, two still outstanding: the port is in use, not idle
    expect(client.openPorts).toHaveLength(1);
    expect(r.idlePorts).toBe(0);
    await clock.advanceAsync(100);
    expect(r.idlePorts).toBe(0);
    await outcome(Promise.all(asks));
    expect(r.idlePorts).toBe(1);
    await clock.advanceAsync(DNS_DEFAULTS.portIdleMs + 10);
    expect(client.openPorts).toEqual([]);

    // queriesPerPort 3 with room for 4: the fourth concurrent query opens another port; the first
    // closes when its third query ends, the second waits in the pool
    const r3 = resolver({ queriesPerPort: 3, concurrentPerPort: 4, cacheEntries: 0 });
    n = 0;
    await outcome(Promise.all(Array.from({ length: 4 }, (_, i) => r3.resolve4(`q${i}.test`))));
    const ports = sent().slice(3).map((q) => q.port);
    expect(ports.slice(0, 3).every((p) => p === ports[0])).toBe(true);
    expect(ports[3]).not.toBe(ports[0]);
    expect(client.openPorts).toEqual([ports[3]]);
    expect(r3.idlePorts).toBe(1);
  });

  it('ICMP port unreachable ends every query on the shared port with ECONNREFUSED and closes it', async () => {
    net.refuseClosedPorts = true;
    const r = resolver({ queriesPerPort: 100, concurrentPerPort: 4, attempts: 1 });
    const results = await outcome(Promise.all([r.resolve4('a.test').catch((e: Error) => e), r.resolve4('b.test').catch((e: Error) => e)]));
    expect(results).toMatchObject([{ code: 'ECONNREFUSED' }, { code: 'ECONNREFUSED' }]);
    expect(new Set(sent().map((q) => q.port)).size).toBe(1);
    expect(client.openPorts).toEqual([]);
    expect(r.idlePorts).toBe(0);
  });
});

describe('spoofing resistance (RFC 5452)', () => {
  it('every query, retries included, uses a fresh random id and a fresh random source port', async () => {
    const { queries } = scriptedServer(NS1, () => undefined); // never answers
    const r = resolver({ attempts: 3 });
    await outcome(r.resolve4('a.test'));
    await outcome(r.resolve4('b.test'));
    const sent = net.sentTo(53);
    expect(sent).toHaveLength(6);
    expect(new Set(queries.map((q) => q.id)).size).toBe(6);
    const ports = sent.map((d) => d.from.port);
    expect(new Set(ports).size).toBe(6);
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(49_152);
    // and every socket was closed afterwards
    expect(client.openPorts).toEqual([]);
  });

  it('a reply from another address, another port, with another id or another question is dropped, and the genuine reply still wins', async () => {
    const { host } = scriptedServer(NS1, (q) => {
      const query = net.sentTo(53).at(-1)!;
      const good = reply(q, { answers: [a('www.test', '192.0.2.80')] });
      // spoofer on another host races the real answer with every kind of wrong reply
      net.inject({ address: parseIpv4('198.51.100.66'), port: 53 }, query.from, emitDnsMessage(reply(q, { answers: [a('www.test', '6.6.6.6')] })));
      net.inject({ address: NS1, port: 5353 }, query.from, emitDnsMessage(reply(q, { answers: [a('www.test', '6.6.6.6')] })));
      net.inject({ address: NS1, port: 53 }, query.from, emitDnsMessage({ ...reply(q, { answers: [a('www.test', '6.6.6.6')] }), id: (q.id + 1) & 0xffff }));
      net.inject(
        { address: NS1, port: 53 },
        query.from,
        emitDnsMessage(reply(q, { questions: [{ name: 'evil.test', type: DnsType.A, class: 1 }], answers: [a('www.test', '6.6.6.6')] })),
      );
      net.inject({ address: NS1, port: 53 }, query.from, emitDnsMessage({ ...reply(q, { answers: [a('www.test', '6.6.6.6')] }), response: false }));
      return good;
    });
    void host;
    const r = resolver();
    expect(await outcome(r.resolve4('www.test'))).toEqual(['192.0.2.80']);
    expect(r.stats.drops).toEqual({ 'wrong-source': 2, 'wrong-id': 1, 'wrong-question': 1, 'not-response': 1 });
  });

  it('a malformed reply is a counted drop; the query keeps waiting for a good one', async () => {
    scriptedServer(NS1, (q) => {
      const query = net.sentTo(53).at(-1)!;
      net.inject({ address: NS1, port: 53 }, query.from, Uint8Array.from([(q.id >> 8) & 0xff, q.id & 0xff, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]));
      return reply(q, { answers: [a('www.test', '192.0.2.80')] });
    });
    const r = resolver();
    expect(await outcome(r.resolve4('www.test'))).toEqual(['192.0.2.80']);
    expect(r.stats.drops).toEqual({ 'bad-pointer': 1 });
  });

  it('only malformed replies: EBADRESP rather than ETIMEOUT', async () => {
    scriptedServer(NS1, () => new Uint8Array(600));
    expect(await outcome(resolver().resolve4('www.test'))).toMatchObject({ code: 'EBADRESP' });
  });
});

describe('timeouts, retries and failover', () => {
  it('with no answer it retries with a doubling timeout, then ETIMEOUT', async () => {
    scriptedServer(NS1, () => undefined);
    const r = resolver({ initialTimeoutMs: 1000, maxTimeoutMs: 3000, attempts: 4 });
    const result = await outcome(r.resolve4('slow.test'));
    expect(result).toMatchObject({ code: 'ETIMEOUT', syscall: 'queryA' });
    expect(net.sentTo(53).map((d) => d.at)).toEqual([0, 1000, 3000, 6000]);
    expect(r.stats.timeouts).toBe(4);
  });

  it('a lost query is answered on retry', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80')] }));
    let first = true;
    net.impair = (d) => (d.to.port === 53 && first ? ((first = false), 'drop') : 'deliver');
    expect(await outcome(resolver().resolve4('www.test'))).toEqual(['192.0.2.80']);
    expect(net.sentTo(53)).toHaveLength(2);
  });

  it('a late reply to an abandoned query does nothing (its socket is closed)', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80')] }));
    let n = 0;
    net.impair = (d) => (d.from.port === 53 && n++ === 0 ? { delayMs: 1500 } : 'deliver');
    const r = resolver();
    expect(await outcome(r.resolve4('www.test'))).toEqual(['192.0.2.80']);
    await clock.advanceAsync(5000);
    expect(r.stats.repliesAccepted).toBe(1);
  });

  it('duplicated replies are harmless', async () => {
    scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80')] }));
    net.impair = (d) => (d.from.port === 53 ? { copies: 3 } : 'deliver');
    const r = resolver();
    expect(await outcome(r.resolve4('www.test'))).toEqual(['192.0.2.80']);
    expect(r.stats.repliesAccepted).toBe(1);
  });

  it('a silent first server fails over to the second, which is then asked first', async () => {
    scriptedServer(NS1, () => undefined);
    scriptedServer(NS2, (q) => reply(q, { answers: [a(q.questions[0]!.name, '192.0.2.80')] }));
    const r = resolver({ servers: [NS1, NS2] });
    expect(await outcome(r.resolve4('one.test'))).toEqual(['192.0.2.80']);
    expect(net.sentTo(53).map((d) => [d.to.address, d.at])).toEqual([
      [NS1, 0],
      [NS2, 1000],
    ]);
    net.log.length = 0;
    expect(await outcome(r.resolve4('two.test'))).toEqual(['192.0.2.80']);
    expect(net.sentTo(53).map((d) => d.to.address)).toEqual([NS2]);
  });

  it('SERVFAIL from one server moves on to the next; from all of them it is ESERVFAIL', async () => {
    scriptedServer(NS1, (q) => reply(q, { rcode: DnsRcode.SERVFAIL }));
    const ns2 = scriptedServer(NS2, (q) => (q.questions[0]!.name === 'ok.test' ? reply(q, { answers: [a('ok.test', '192.0.2.9')] }) : reply(q, { rcode: DnsRcode.SERVFAIL })));
    const r = resolver({ servers: [NS1, NS2], attempts: 2 });
    expect(await outcome(r.resolve4('ok.test'))).toEqual(['192.0.2.9']);
    expect(await outcome(r.resolve4('bad.test'))).toMatchObject({ code: 'ESERVFAIL' });
    expect(ns2.queries.length).toBe(3);
  });

  it('REFUSED everywhere is EREFUSED', async () => {
    scriptedServer(NS1, (q) => reply(q, { rcode: DnsRcode.REFUSED }));
    expect(await outcome(resolver({ attempts: 1 }).resolve4('x.test'))).toMatchObject({ code: 'EREFUSED' });
  });

  it('ICMP port unreachable from the only server is ECONNREFUSED, without waiting for the timeout', async () => {
    net.host('ns', NS1); // up, but nothing listens on 53
    net.refuseClosedPorts = true;
    const r = resolver({ attempts: 2 });
    const result = await outcome(r.resolve4('x.test'));
    expect(result).toMatchObject({ code: 'ECONNREFUSED' });
    expect(clock.now()).toBeLessThan(1000);
  });

  it('no servers configured: ECONNREFUSED at once', async () => {
    expect(await outcome(resolver({ servers: [] }).resolve4('x.test'))).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('setServers accepts addresses with ports, getServers prints them', () => {
    const r = resolver();
    r.setServers(['192.0.2.1', '192.0.2.2:5353']);
    expect(r.getServers()).toEqual(['192.0.2.1', '192.0.2.2:5353']);
    expect(() => r.setServers(['not-an-ip'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_IP_ADDRESS' }));
  });

  it('cancel() rejects outstanding queries with ECANCELLED', async () => {
    scriptedServer(NS1, () => undefined);
    const r = resolver();
    const p = outcome(r.resolve4('x.test'));
    await clock.advanceAsync(10);
    r.cancel();
    expect(await p).toMatchObject({ code: 'ECANCELLED' });
    expect(client.openPorts).toEqual([]);
  });
});

describe('cache (RFC 1035 §7.4, RFC 2308)', () => {
  it('answers from the cache until the TTL runs out, then asks again', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80', 60)] }));
    const r = resolver();
    await outcome(r.resolve4('www.test'));
    await clock.advanceAsync(59_000);
    expect(await outcome(r.resolve4('www.test', { ttl: true }))).toEqual([{ address: '192.0.2.80', ttl: 1 }]);
    expect(ns.queries).toHaveLength(1);
    await clock.advanceAsync(1_000);
    await outcome(r.resolve4('www.test'));
    expect(ns.queries).toHaveLength(2);
  });

  it('a TTL of 0 is used once and not cached', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80', 0)] }));
    const r = resolver();
    await outcome(r.resolve4('www.test'));
    await outcome(r.resolve4('www.test'));
    expect(ns.queries).toHaveLength(2);
  });

  it('NXDOMAIN is cached for min(SOA TTL, SOA MINIMUM) and applies to every type', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { rcode: DnsRcode.NXDOMAIN, authorities: [soa('test', 30, 600)] }));
    const r = resolver();
    expect(await outcome(r.resolve4('gone.test'))).toMatchObject({ code: 'ENOTFOUND' });
    expect(await outcome(r.resolve6('gone.test'))).toMatchObject({ code: 'ENOTFOUND' });
    expect(ns.queries).toHaveLength(1);
    await clock.advanceAsync(30_000);
    expect(await outcome(r.resolve4('gone.test'))).toMatchObject({ code: 'ENOTFOUND' });
    expect(ns.queries).toHaveLength(2);
  });

  it('NODATA is cached for that type only', async () => {
    const ns = scriptedServer(NS1, (q) =>
      q.questions[0]!.type === DnsType.A ? reply(q, { authorities: [soa('test', 30)] }) : reply(q, { answers: [{ name: 'x.test', type: DnsType.AAAA, class: 1, ttl: 30, data: { kind: 'aaaa', address: new Uint8Array(16) } }] }),
    );
    const r = resolver();
    expect(await outcome(r.resolve4('x.test'))).toMatchObject({ code: 'ENODATA' });
    expect(await outcome(r.resolve4('x.test'))).toMatchObject({ code: 'ENODATA' });
    expect(await outcome(r.resolve6('x.test'))).toEqual(['::']);
    expect(ns.queries).toHaveLength(2);
  });

  it('a negative answer without SOA is not cached (RFC 2308 §5)', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { rcode: DnsRcode.NXDOMAIN }));
    const r = resolver();
    await outcome(r.resolve4('gone.test'));
    await outcome(r.resolve4('gone.test'));
    expect(ns.queries).toHaveLength(2);
  });

  it('holds at most cacheEntries names, dropping the least recently used', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { answers: [a(q.questions[0]!.name, '192.0.2.1')] }));
    const r = resolver({ cacheEntries: 2 });
    await outcome(r.resolve4('a.test'));
    await outcome(r.resolve4('b.test'));
    await outcome(r.resolve4('a.test')); // a is now the most recent
    await outcome(r.resolve4('c.test')); // evicts b
    expect(r.cacheSize).toBe(2);
    await outcome(r.resolve4('a.test'));
    expect(ns.queries).toHaveLength(3);
    await outcome(r.resolve4('b.test'));
    expect(ns.queries).toHaveLength(4);
  });

  it('concurrent asks for one name share one query', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { answers: [a('www.test', '192.0.2.80')] }));
    const r = resolver();
    const both = Promise.all([r.resolve4('www.test'), r.resolve4('WWW.test')]);
    expect(await outcome(both)).toEqual([['192.0.2.80'], ['192.0.2.80']]);
    expect(ns.queries).toHaveLength(1);
  });
});

describe('CNAMEs across queries', () => {
  it('when the server gives only the alias, it asks again for the target', async () => {
    const ns = scriptedServer(NS1, (q) => {
      const name = q.questions[0]!.name;
      if (name === 'www.test') return reply(q, { answers: [cname('www.test', 'cdn.other', 100)] });
      return reply(q, { answers: [a('cdn.other', '192.0.2.5', 50)] });
    });
    expect(await outcome(resolver().resolve4('www.test', { ttl: true }))).toEqual([{ address: '192.0.2.5', ttl: 50 }]);
    expect(ns.queries.map((q) => q.questions[0]!.name)).toEqual(['www.test', 'cdn.other']);
  });

  it('stops after maxCnameChain aliases', async () => {
    scriptedServer(NS1, (q) => {
      const name = q.questions[0]!.name;
      const n = Number(name.split('.')[0]!.slice(1));
      return reply(q, { answers: [cname(name, `c${n + 1}.test`)] });
    });
    expect(await outcome(resolver({ maxCnameChain: 5 }).resolve4('c0.test'))).toMatchObject({ code: 'EBADRESP' });
  });
});

describe('truncation and TCP (RFC 7766)', () => {
  it('a truncated reply is retried over TCP with the same query, framed with a 2-octet length', async () => {
    scriptedServer(NS1, (q) => reply(q, { truncated: true, answers: [a('big.test', '192.0.2.1')] }));
    const tcpQuery = vi.fn(async (_server: { address: number; port: number }, query: Uint8Array) => {
      const q = parseDnsMessage(query);
      if (!q.ok) throw new Error('bad query');
      return emitDnsMessage(reply(q.message, { answers: [a('big.test', '192.0.2.1'), a('big.test', '192.0.2.2'), a('big.test', '192.0.2.3')] }));
    });
    const r = resolver({ tcpQuery });
    expect(await outcome(r.resolve4('big.test'))).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    expect(tcpQuery).toHaveBeenCalledTimes(1);
    expect(tcpQuery.mock.calls[0]![0]).toEqual({ address: NS1, port: 53 });
    expect(r.stats.tcpRetries).toBe(1);
  });

  it('a TCP reply with another id is a bad response', async () => {
    scriptedServer(NS1, (q) => reply(q, { truncated: true }));
    const r = resolver({
      attempts: 1,
      tcpQuery: async (_s, query) => {
        const q = parseDnsMessage(query);
        if (!q.ok) throw new Error('bad query');
        return emitDnsMessage({ ...reply(q.message, { answers: [a('big.test', '6.6.6.6')] }), id: q.message.id ^ 1 });
      },
    });
    expect(await outcome(r.resolve4('big.test'))).toMatchObject({ code: 'EBADRESP' });
  });

  it('without a TCP hook the partial answer is used but not cached', async () => {
    const ns = scriptedServer(NS1, (q) => reply(q, { truncated: true, answers: [a('big.test', '192.0.2.1')] }));
    const r = resolver();
    expect(await outcome(r.resolve4('big.test'))).toEqual(['192.0.2.1']);
    await outcome(r.resolve4('big.test'));
    expect(ns.queries).toHaveLength(2);
  });

  it('framing: messages split and coalesced anyhow come out whole', () => {
    const m1 = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const m2 = Uint8Array.from([1, 2, 3]);
    const stream = Uint8Array.from([...frameDnsMessage(m1), ...frameDnsMessage(m2)]);
    expect(Array.from(stream.subarray(0, 2))).toEqual([1, 44]);
    const d = new DnsStreamDeframer();
    const out: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i += 7) out.push(...d.push(stream.subarray(i, i + 7)));
    expect(out).toEqual([m1, m2]);
    expect(d.pendingBytes).toBe(0);
    // a byte at a time, 200 messages of growing size, then half a message left over
    const many = Array.from({ length: 200 }, (_, n) => Uint8Array.from({ length: n }, (_, i) => (i * n) & 0xff));
    const bytes = Uint8Array.from(many.flatMap((m) => [...frameDnsMessage(m)]).concat([0, 9, 1, 2]));
    const e = new DnsStreamDeframer();
    const got: Uint8Array[] = [];
    for (const byte of bytes) got.push(...e.push(Uint8Array.of(byte)));
    expect(got).toEqual(many);
    expect(e.pendingBytes).toBe(4);
  });

  it('createTcpQuery drives a net.Socket-shaped connection', async () => {
    const written: Uint8Array[] = [];
    const listeners: Record<string, ((arg?: unknown) => void)[]> = {};
    let destroyed = false;
    const socket: StreamSocketLike = {
      write: (d) => written.push(d),
      end: () => undefined,
      destroy: () => (destroyed = true),
      on: ((event: string, listener: (arg?: unknown) => void) => ((listeners[event] ??= []).push(listener), socket)) as StreamSocketLike['on'],
    };
    const connect = vi.fn(() => socket);
    const query = createTcpQuery(connect)({ address: NS1, port: 53 }, Uint8Array.from([9, 9, 9]));
    expect(connect).toHaveBeenCalledWith(53, '192.0.2.53');
    expect(Array.from(written[0]!)).toEqual([0, 3, 9, 9, 9]);
    // the reply arrives in two chunks
    for (const l of listeners['data']!) l(Uint8Array.from([0, 2, 7]));
    for (const l of listeners['data']!) l(Uint8Array.from([8]));
    expect(Array.from(await query)).toEqual([7, 8]);
    expect(destroyed).toBe(true);
  });
});
