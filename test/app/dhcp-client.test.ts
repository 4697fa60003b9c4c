import { beforeEach, describe, expect, it } from 'vitest';
import { DhcpClient, rememberLease, type DhcpClientOptions, type DhcpClientState } from '../../src/app/dhcp/client.js';
import { DhcpServer, type DhcpServerOptions } from '../../src/app/dhcp/server.js';
import { BOOTREPLY, DhcpMessageType, emitDhcpMessage, parseDhcpMessage, type DhcpMessage, type DhcpOptions } from '../../src/app/dhcp/wire.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { formatIpv4, IPV4_BROADCAST, parseIpv4, parseMac } from '../../src/wire/address.js';
import { FakeNetwork, type Datagram, type FakeHost } from './fake-network.js';

const MAC = parseMac('02:00:00:00:00:01');
const SERVER = parseIpv4('192.0.2.1');
const SERVER2 = parseIpv4('192.0.2.2');
const S = 1000;

let clock: VirtualClock;
let net: FakeNetwork;
let host: FakeHost;

beforeEach(() => {
  clock = new VirtualClock();
  net = new FakeNetwork(clock);
  host = net.host('client');
});

function server(options: Partial<DhcpServerOptions> = {}, address = SERVER): DhcpServer {
  const h = net.host(`dhcp-${address}`, address);
  const s = new DhcpServer({
    transport: h,
    clock,
    serverAddress: address,
    prefixLength: 24,
    poolStart: '192.0.2.100',
    poolEnd: '192.0.2.109',
    router: '192.0.2.1',
    dnsServers: ['192.0.2.53'],
    domainName: 'lab.test',
    leaseTimeS: 3600,
    ...options,
  });
  s.start();
  return s;
}

function client(options: Partial<DhcpClientOptions> = {}): { c: DhcpClient; states: DhcpClientState[] } {
  const c = new DhcpClient({ transport: host, clock, random: new SeededRandom(7), mac: MAC, config: host.config, startupDelayMs: { min: 0, max: 0 }, hostName: 'spinet', ...options });
  const states: DhcpClientState[] = [];
  c.on('state', (to) => states.push(to));
  c.start();
  return { c, states };
}

/** What the client sent (to port 67), parsed. */
function fromClient(): (DhcpMessage & { d: Datagram })[] {
  return net.sentTo(67).flatMap((d) => {
    const p = parseDhcpMessage(d.data);
    return p.ok ? [{ ...p.message, d }] : [];
  });
}

function typeOf(m: DhcpMessage): number {
  return m.options.messageType!;
}

/** Answer client messages by hand: `answer` returns a reply (type + fields) or nothing. */
function scriptedServer(answer: (m: DhcpMessage) => { type: number; yiaddr?: number; options?: DhcpOptions } | undefined, address = SERVER): DhcpMessage[] {
  const h = net.host(`scripted-${address}`, address);
  const seen: DhcpMessage[] = [];
  const socket = h.open({ port: 67, broadcast: true });
  socket.onMessage((data) => {
    const p = parseDhcpMessage(data);
    if (!p.ok) return;
    seen.push(p.message);
    const r = answer(p.message);
    if (!r) return;
    socket.send(
      emitDhcpMessage({
        op: BOOTREPLY,
        xid: p.message.xid,
        chaddr: p.message.chaddr,
        yiaddr: r.yiaddr ?? parseIpv4('192.0.2.150'),
        options: { messageType: r.type, serverIdentifier: address, leaseTime: 600, subnetMask: parseIpv4('255.255.255.0'), ...r.options },
      }),
      68,
      IPV4_BROADCAST,
    );
  });
  return seen;
}

describe('RFC 2131 §4.4.1 acquiring a lease: INIT → SELECTING → REQUESTING → BOUND', () => {
  it('walks the states and configures the interface from the ACK', async () => {
    server();
    const { c, states } = client();
    let bound = 0;
    c.on('bound', () => bound++);
    await clock.advanceAsync(100);
    expect(states).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND']);
    expect(bound).toBe(1);
    expect(c.lease).toMatchObject({
      address: parseIpv4('192.0.2.100'),
      prefixLength: 24,
      routers: [SERVER],
      dnsServers: [parseIpv4('192.0.2.53')],
      domainName: 'lab.test',
      serverIdentifier: SERVER,
      leaseTimeS: 3600,
      renewalTimeS: 1800,
      rebindingTimeS: 3150,
    });
    expect(host.configLog).toEqual([`setAddress ${parseIpv4('192.0.2.100')}/24`, `setRouter ${SERVER}`, `setDnsServers ${parseIpv4('192.0.2.53')}`]);
    expect(host.address).toBe(parseIpv4('192.0.2.100'));
  });

  it('DHCPDISCOVER: broadcast from 0.0.0.0:68, broadcast flag, ciaddr 0, client id, host name, parameter list', async () => {
    server();
    client();
    await clock.advanceAsync(100);
    const [discover, request] = fromClient();
    expect(typeOf(discover!)).toBe(DhcpMessageType.DISCOVER);
    expect(discover!.d.from).toEqual({ address: 0, port: 68 });
    expect(discover!.d.to).toEqual({ address: IPV4_BROADCAST, port: 67 });
    expect(discover).toMatchObject({ broadcast: true, ciaddr: 0, hlen: 6, chaddr: MAC });
    expect(discover!.options).toMatchObject({
      clientIdentifier: Uint8Array.from([1, ...MAC]),
      hostName: 'spinet',
      parameterRequestList: [1, 3, 6, 15, 28, 51, 58, 59],
      maxMessageSize: 576,
    });
    expect(discover!.options.serverIdentifier).toBeUndefined();
    // RFC 2131 §4.3.2 SELECTING: REQUEST names the chosen server and the offered address, ciaddr 0.
    expect(typeOf(request!)).toBe(DhcpMessageType.REQUEST);
    expect(request).toMatchObject({ broadcast: true, ciaddr: 0 });
    expect(request!.d.to).toEqual({ address: IPV4_BROADCAST, port: 67 });
    expect(request!.options).toMatchObject({ serverIdentifier: SERVER, requestedAddress: parseIpv4('192.0.2.100') });
  });

  it('xid: DISCOVER retransmissions and the REQUEST share one xid (the OFFER echoes it; Table 5)', async () => {
    server();
    let dropped = 0;
    net.impair = (d) => (d.to.port === 67 && dropped++ < 2 ? 'drop' : 'deliver');
    const { c } = client();
    await clock.advanceAsync(30 * S);
    expect(c.state).toBe('BOUND');
    const sent = fromClient();
    expect(sent.map(typeOf)).toEqual([1, 1, 1, 3]);
    expect(new Set(sent.map((m) => m.xid)).size).toBe(1);
  });

  it('a second start draws a different xid (one random xid per exchange)', async () => {
    const seen = scriptedServer(() => undefined);
    const a = client({ random: new SeededRandom(1) });
    await clock.advanceAsync(10);
    a.c.stop();
    client({ random: new SeededRandom(2) });
    await clock.advanceAsync(10);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.xid).not.toBe(seen[1]!.xid);
  });

  it('retransmits DISCOVER after 4, 8, 16, 32, 64, 64 s, each ±1 s (RFC 2131 §4.1)', async () => {
    client();
    await clock.advanceAsync(400 * S);
    const times = fromClient().map((m) => m.d.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const expected = [4, 8, 16, 32, 64, 64, 64];
    expected.forEach((base, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual((base - 1) * S);
      expect(gaps[i]).toBeLessThanOrEqual((base + 1) * S);
    });
    // jittered, not exact
    expect(gaps.some((g, i) => g !== expected[i]! * S)).toBe(true);
  });

  it("'secs' counts seconds since the exchange began", async () => {
    client();
    await clock.advanceAsync(30 * S);
    const secs = fromClient().map((m) => m.secs);
    expect(secs[0]).toBe(0);
    expect(secs[1]).toBeGreaterThanOrEqual(3);
    expect(secs[2]).toBeGreaterThanOrEqual(11);
  });

  it("the DHCPREQUEST repeats the DHCPDISCOVER's 'secs', retransmissions included (RFC 2131 §4.4.1)", async () => {
    let discovers = 0;
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? (discovers++ < 2 ? undefined : { type: DhcpMessageType.OFFER }) : undefined));
    client();
    await clock.advanceAsync(40 * S);
    const sent = fromClient();
    const lastDiscover = sent.filter((m) => typeOf(m) === DhcpMessageType.DISCOVER).at(-1)!;
    const requests = sent.filter((m) => typeOf(m) === DhcpMessageType.REQUEST);
    expect(lastDiscover.secs).toBeGreaterThanOrEqual(11);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.every((m) => m.secs === lastDiscover.secs)).toBe(true);
  });

  it('by default waits a random 1–10 s before the first DISCOVER (RFC 2131 §4.4.1)', async () => {
    client({ startupDelayMs: undefined });
    await clock.advanceAsync(999);
    expect(fromClient()).toHaveLength(0);
    await clock.advanceAsync(9_100);
    expect(fromClient()).toHaveLength(1);
  });

  it('takes the first offer when two servers answer; the other server withdraws its offer', async () => {
    const s1 = server({ poolStart: '192.0.2.100', poolEnd: '192.0.2.109' });
    const s2 = server({ poolStart: '192.0.2.200', poolEnd: '192.0.2.209' }, SERVER2);
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('BOUND');
    const chosen = c.lease!.serverIdentifier;
    const other = chosen === SERVER ? s2 : s1;
    expect(other.leases()).toEqual([]);
    expect(other.stats.drops['not-for-us']).toBe(1);
  });

  it('a duplicated OFFER produces one REQUEST; a late one after BOUND is ignored', async () => {
    server();
    net.impair = (d) => (d.from.port === 67 ? { copies: 2 } : 'deliver');
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('BOUND');
    expect(fromClient().map(typeOf)).toEqual([1, 3]);
    expect(c.stats.drops['unexpected-DHCPOFFER']).toBe(1);
    expect(c.stats.drops['unexpected-DHCPACK']).toBe(1);
  });

  it('replies with another xid, for another chaddr, or malformed are counted drops', async () => {
    scriptedServer(() => undefined);
    const { c } = client();
    await clock.advanceAsync(10);
    const xid = fromClient()[0]!.xid;
    const offer = (fields: { xid: number; chaddr: Uint8Array }): Uint8Array =>
      emitDhcpMessage({ op: BOOTREPLY, ...fields, yiaddr: parseIpv4('192.0.2.77'), options: { messageType: 2, serverIdentifier: SERVER } });
    net.inject({ address: SERVER, port: 67 }, { address: IPV4_BROADCAST, port: 68 }, offer({ xid: xid ^ 1, chaddr: MAC }));
    net.inject({ address: SERVER, port: 67 }, { address: IPV4_BROADCAST, port: 68 }, offer({ xid, chaddr: parseMac('02:00:00:00:00:99') }));
    net.inject({ address: SERVER, port: 67 }, { address: IPV4_BROADCAST, port: 68 }, new Uint8Array(100));
    await clock.advanceAsync(10);
    expect(c.state).toBe('SELECTING');
    expect(c.stats.drops).toEqual({ 'wrong-xid': 1, 'wrong-chaddr': 1, truncated: 1 });
  });

  it('an ACK from a server other than the one chosen is dropped in REQUESTING', async () => {
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : undefined));
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.REQUEST ? { type: DhcpMessageType.ACK } : undefined), SERVER2);
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('REQUESTING');
    expect(c.stats.drops['wrong-server']).toBe(1);
  });

  it('an ACK without a lease time is dropped (RFC 2131 Table 3)', async () => {
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : { type: DhcpMessageType.ACK, options: { leaseTime: undefined } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('REQUESTING');
    expect(c.stats.drops['incomplete-ack']).toBe(1);
  });

  it('REQUESTING without an answer gives up after 5 transmissions and starts over from INIT with a new xid', async () => {
    const seen = scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : undefined));
    const { c, states } = client();
    await clock.advanceAsync(130 * S);
    const firstXid = seen[0]!.xid;
    const requests = seen.filter((m) => typeOf(m) === DhcpMessageType.REQUEST && m.xid === firstXid);
    expect(requests).toHaveLength(5);
    expect(states.slice(0, 5)).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'INIT', 'SELECTING']);
    const discovers = seen.filter((m) => typeOf(m) === DhcpMessageType.DISCOVER);
    expect(discovers[1]!.xid).not.toBe(discovers[0]!.xid);
    expect(c.state).toBe('REQUESTING');
  });

  it('a NAK in REQUESTING returns to INIT and starts over', async () => {
    let naks = 0;
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : naks++ === 0 ? { type: DhcpMessageType.NAK, options: { leaseTime: undefined, message: 'no' } } : { type: DhcpMessageType.ACK }));
    const { c, states } = client();
    const nak: (string | undefined)[] = [];
    c.on('nak', (msg) => nak.push(msg));
    await clock.advanceAsync(100);
    expect(nak).toEqual(['no']);
    expect(states).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND']);
  });
});

describe('RFC 5227 probe before use (CHECKING) and DHCPDECLINE', () => {
  it('emits progress: waiting, discover per transmission, offer, checking, conflict, waiting 10 s, … bound', async () => {
    const c = new DhcpClient({
      transport: host,
      clock,
      random: new SeededRandom(7),
      mac: MAC,
      config: host.config,
      startupDelayMs: { min: 0, max: 0 },
      arpProbe: async (address) => (address === parseIpv4('192.0.2.100') ? 'conflict' : 'free'),
    });
    const events: string[] = [];
    c.on('waiting', (ms) => events.push(`waiting ${ms}`));
    c.on('discover', (n) => events.push(`discover ${n}`));
    c.on('offer', (a, from) => events.push(`offer ${formatIpv4(a)} from ${formatIpv4(from)}`));
    c.on('checking', (a) => events.push(`checking ${formatIpv4(a)}`));
    c.on('conflict', (a) => events.push(`conflict ${formatIpv4(a)}`));
    c.on('bound', (l) => events.push(`bound ${formatIpv4(l.address)}`));
    c.start();
    // no server yet: the DISCOVER is retransmitted (4 s ± 1 s later)
    await clock.advanceAsync(6 * S);
    expect(events).toEqual(['waiting 0', 'discover 1', 'discover 2']);
    server();
    await clock.advanceAsync(20 * S);
    expect(events).toEqual([
      'waiting 0',
      'discover 1',
      'discover 2',
      'discover 3',
      'offer 192.0.2.100 from 192.0.2.1',
      'checking 192.0.2.100',
      'conflict 192.0.2.100',
      'waiting 10000',
      'discover 1',
      'offer 192.0.2.101 from 192.0.2.1',
      'checking 192.0.2.101',
      'bound 192.0.2.101',
    ]);
  });

  it('a conflicting address is declined, the server quarantines it, and after 10 s the client gets another', async () => {
    const s = server();
    const probed: number[] = [];
    const { c } = client({
      arpProbe: async (address) => {
        probed.push(address);
        return address === parseIpv4('192.0.2.100') ? 'conflict' : 'free';
      },
    });
    const conflicts: number[] = [];
    c.on('conflict', (a) => conflicts.push(a));
    await clock.advanceAsync(100);
    expect(conflicts).toEqual([parseIpv4('192.0.2.100')]);
    expect(c.state).toBe('INIT');
    expect(host.address).toBe(0); // never configured
    const decline = fromClient().find((m) => typeOf(m) === DhcpMessageType.DECLINE)!;
    expect(decline).toMatchObject({ ciaddr: 0 });
    expect(decline.options).toMatchObject({ requestedAddress: parseIpv4('192.0.2.100'), serverIdentifier: SERVER });
    expect(decline.xid).not.toBe(fromClient()[0]!.xid);
    expect(s.leases()).toContainEqual(expect.objectContaining({ address: parseIpv4('192.0.2.100'), state: 'declined' }));
    await clock.advanceAsync(9_800);
    expect(c.state).toBe('INIT');
    await clock.advanceAsync(300);
    expect(c.state).toBe('BOUND');
    expect(c.lease!.address).toBe(parseIpv4('192.0.2.101'));
    expect(probed).toEqual([parseIpv4('192.0.2.100'), parseIpv4('192.0.2.101')]);
  });

  it('the address is configured only after the probe says free', async () => {
    server();
    let release!: (v: 'free') => void;
    const { c } = client({ arpProbe: () => new Promise((r) => (release = r)) });
    await clock.advanceAsync(100);
    expect(c.state).toBe('CHECKING');
    expect(host.configLog).toEqual([]);
    release('free');
    await clock.advanceAsync(1);
    expect(c.state).toBe('BOUND');
  });
});

describe('RFC 2131 §4.4.5 renewing, rebinding, expiry', () => {
  it('T1 → RENEWING: a unicast REQUEST to the server, ciaddr set, no broadcast flag, no options 50/54, a new xid', async () => {
    server();
    const { c } = client();
    let renewed = 0;
    c.on('renewed', () => renewed++);
    await clock.advanceAsync(100);
    const firstXid = fromClient()[0]!.xid;
    host.address = c.lease!.address;
    await clock.advanceAsync(1800 * S);
    const renew = fromClient()[2]!;
    expect(typeOf(renew)).toBe(DhcpMessageType.REQUEST);
    // the lease counts from the first REQUEST (sent at 2 ms: DISCOVER at 0, OFFER back at 1)
    expect(renew.d.at).toBe(1800 * S + 2);
    expect(renew.d.to).toEqual({ address: SERVER, port: 67 });
    expect(renew).toMatchObject({ ciaddr: parseIpv4('192.0.2.100'), broadcast: false });
    expect(renew.options.requestedAddress).toBeUndefined();
    expect(renew.options.serverIdentifier).toBeUndefined();
    expect(renew.xid).not.toBe(firstXid);
    expect(renewed).toBe(1);
    expect(c.state).toBe('BOUND');
    // the renewed lease counts from the renewal REQUEST
    expect(c.lease!.startedAt).toBe(1800 * S + 2);
  });

  it('an ACK naming a server other than the lease’s is dropped in RENEWING', async () => {
    scriptedServer((m) => {
      if (typeOf(m) === DhcpMessageType.DISCOVER) return { type: DhcpMessageType.OFFER };
      if (typeOf(m) !== DhcpMessageType.REQUEST) return undefined;
      // the first REQUEST (SELECTING) is ours; the renewal is answered in another server's name
      return m.ciaddr === 0 ? { type: DhcpMessageType.ACK } : { type: DhcpMessageType.ACK, options: { serverIdentifier: SERVER2 } };
    });
    const { c } = client();
    let renewed = 0;
    c.on('renewed', () => renewed++);
    await clock.advanceAsync(100);
    expect(c.state).toBe('BOUND');
    host.address = c.lease!.address;
    await clock.advanceAsync(300 * S); // T1 of the 600 s lease
    expect(c.state).toBe('RENEWING');
    expect(c.stats.drops['wrong-server']).toBe(1);
    expect(renewed).toBe(0);
  });

  it('with the server gone: RENEWING at T1 (retries at half the time to T2, ≥ 60 s), REBINDING at T2 (broadcast), expiry at the lease end', async () => {
    server();
    const { c, states } = client();
    await clock.advanceAsync(100);
    net.impair = (d) => (d.to.port === 67 ? 'drop' : 'deliver');
    const expired: number[] = [];
    c.on('expired', (l) => expired.push(l.address));
    await clock.advanceAsync(3600 * S);
    const t0 = fromClient()[1]!.d.at; // the lease counts from the first REQUEST
    const later = fromClient().slice(2);
    const renewing = later.filter((m) => m.d.to.address === SERVER);
    const rebinding = later.filter((m) => m.d.to.address === IPV4_BROADCAST && typeOf(m) === DhcpMessageType.REQUEST);
    // RENEWING: T1 = 1800 s, T2 = 3150 s: each wait is half the time left, until the 60 s floor
    // would overshoot T2
    expect(renewing.map((m) => m.d.at - t0)).toEqual([1800 * S, 2475 * S, 2812.5 * S, 2981.25 * S, 3065.625 * S, 3125.625 * S]);
    expect(new Set(renewing.map((m) => m.xid)).size).toBe(1);
    // REBINDING from T2 = 3150 s to expiry at 3600 s: waits of 225, 112.5, then the 60 s floor
    expect(rebinding.map((m) => m.d.at - t0)).toEqual([3150 * S, 3375 * S, 3487.5 * S, 3547.5 * S]);
    expect(rebinding.every((m) => m.ciaddr === parseIpv4('192.0.2.100') && !m.broadcast)).toBe(true);
    expect(rebinding[0]!.xid).not.toBe(renewing[0]!.xid);
    expect(states.slice(4)).toEqual(['BOUND', 'RENEWING', 'REBINDING', 'INIT', 'SELECTING']);
    expect(expired).toEqual([parseIpv4('192.0.2.100')]);
    expect(host.configLog.slice(-3)).toEqual([`clearAddress ${parseIpv4('192.0.2.100')}`, 'setRouter none', 'setDnsServers ']);
    expect(host.address).toBe(0);
    // and the client starts over at once
    expect(typeOf(fromClient().at(-1)!)).toBe(DhcpMessageType.DISCOVER);
  });

  it('REBINDING is answered by any server', async () => {
    server();
    const { c } = client();
    await clock.advanceAsync(100);
    host.address = c.lease!.address;
    // the original server is deaf to unicast from now on; a second one answers broadcasts
    net.impair = (d) => (d.to.address === SERVER || d.from.address === SERVER ? 'drop' : 'deliver');
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.REQUEST ? { type: DhcpMessageType.ACK, yiaddr: m.ciaddr } : undefined), SERVER2);
    await clock.advanceAsync(3200 * S);
    expect(c.state).toBe('BOUND');
    expect(c.lease!.serverIdentifier).toBe(SERVER2);
  });

  it('a NAK while RENEWING removes the address and restarts', async () => {
    let acks = 0;
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : acks++ === 0 ? { type: DhcpMessageType.ACK } : { type: DhcpMessageType.NAK }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('BOUND');
    await clock.advanceAsync(300 * S + 50);
    expect(host.configLog).toContain(`clearAddress ${parseIpv4('192.0.2.150')}`);
    expect(['INIT', 'SELECTING', 'REQUESTING', 'BOUND']).toContain(c.state);
  });

  it('T1 ≥ T2 from a server is replaced by the RFC defaults (0.5 / 0.875 of the lease)', async () => {
    scriptedServer((m) => ({ type: typeOf(m) === DhcpMessageType.DISCOVER ? DhcpMessageType.OFFER : DhcpMessageType.ACK, options: { leaseTime: 1000, renewalTime: 900, rebindingTime: 800 } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.lease).toMatchObject({ leaseTimeS: 1000, renewalTimeS: 500, rebindingTimeS: 800 });
  });

  it('T2 ≥ lease from a server is replaced too', async () => {
    scriptedServer((m) => ({ type: typeOf(m) === DhcpMessageType.DISCOVER ? DhcpMessageType.OFFER : DhcpMessageType.ACK, options: { leaseTime: 1000, renewalTime: 100, rebindingTime: 1000 } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.lease).toMatchObject({ leaseTimeS: 1000, renewalTimeS: 100, rebindingTimeS: 875 });
  });

  it('T1 and T2 from the server are used when consistent', async () => {
    server({ leaseTimeS: 1000, renewalTimeS: 100, rebindingTimeS: 200 });
    const { c, states } = client();
    await clock.advanceAsync(100);
    expect(c.lease).toMatchObject({ renewalTimeS: 100, rebindingTimeS: 200 });
    net.impair = (d) => (d.to.port === 67 ? 'drop' : 'deliver');
    await clock.advanceAsync(100 * S);
    expect(states.at(-1)).toBe('RENEWING');
  });

  it('an infinite lease never renews', async () => {
    scriptedServer((m) => ({ type: typeOf(m) === DhcpMessageType.DISCOVER ? DhcpMessageType.OFFER : DhcpMessageType.ACK, options: { leaseTime: 0xffffffff } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.state).toBe('BOUND');
    const before = net.log.length;
    await clock.advanceAsync(30 * 86_400 * S);
    expect(net.log.length).toBe(before);
  });
});

describe('RFC 2131 §3.2 INIT-REBOOT with a remembered lease', () => {
  it('asks for the remembered address (option 50, no 54, ciaddr 0) and binds on ACK', async () => {
    const s = server();
    // a previous run leased .105
    const first = client();
    await clock.advanceAsync(100);
    first.c.stop({ release: false });
    net.log.length = 0;
    host.configLog.length = 0;
    const { c, states } = client({ previousLease: { address: parseIpv4('192.0.2.100') } });
    await clock.advanceAsync(100);
    expect(states).toEqual(['INIT-REBOOT', 'REBOOTING', 'CHECKING', 'BOUND']);
    const [request] = fromClient();
    expect(typeOf(request!)).toBe(DhcpMessageType.REQUEST);
    expect(request).toMatchObject({ ciaddr: 0, broadcast: true });
    expect(request!.options.requestedAddress).toBe(parseIpv4('192.0.2.100'));
    expect(request!.options.serverIdentifier).toBeUndefined();
    expect(c.lease!.address).toBe(parseIpv4('192.0.2.100'));
    expect(s.leases().filter((l) => l.state === 'bound')).toHaveLength(1);
  });

  it('a NAK (wrong network) sends it back to INIT', async () => {
    server();
    const { c, states } = client({ previousLease: { address: parseIpv4('10.9.9.9') } });
    await clock.advanceAsync(100);
    expect(states).toEqual(['INIT-REBOOT', 'REBOOTING', 'INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND']);
    expect(c.lease!.address).toBe(parseIpv4('192.0.2.100'));
  });

  it('silence (a server with no record) falls back to INIT after two REQUESTs, within ~12 s, not a minute', async () => {
    server();
    const { c, states } = client({ previousLease: { address: parseIpv4('192.0.2.107') } });
    await clock.advanceAsync(130 * S);
    expect(fromClient().filter((m) => typeOf(m) === DhcpMessageType.REQUEST && m.options.serverIdentifier === undefined)).toHaveLength(2);
    // 4 s ± 1 after the first REQUEST the second, 8 s ± 1 after that INIT: DISCOVER
    const discoverAt = fromClient().find((m) => typeOf(m) === DhcpMessageType.DISCOVER)!.d.at;
    expect(discoverAt).toBeGreaterThanOrEqual(10 * S);
    expect(discoverAt).toBeLessThanOrEqual(14 * S);
    expect(states.slice(0, 4)).toEqual(['INIT-REBOOT', 'REBOOTING', 'INIT', 'SELECTING']);
    expect(c.state).toBe('BOUND');
  });
});

describe('a lease remembered across restarts (what `spinet run --lease-file` keeps)', () => {
  it('rememberLease keeps the address and when the lease runs out, in Unix ms', async () => {
    server();
    const { c } = client();
    await clock.advanceAsync(100);
    const lease = c.lease!;
    expect(rememberLease(lease)).toEqual({ address: parseIpv4('192.0.2.100'), expiresAtEpochMs: lease.startedAtEpochMs + 3600 * S });
  });

  it('a remembered lease past its expiry is not asked for: the client starts from INIT', async () => {
    server();
    const { c, states } = client({ previousLease: { address: parseIpv4('192.0.2.107'), expiresAtEpochMs: clock.epochMs() - 1 } });
    await clock.advanceAsync(100);
    expect(states).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND']);
    expect(fromClient().some((m) => m.options.requestedAddress === parseIpv4('192.0.2.107'))).toBe(false);
    expect(c.lease!.address).toBe(parseIpv4('192.0.2.100'));
  });

  it('one still running is asked for again, and an authoritative server with no record of it grants it', async () => {
    const s = server({ authoritative: true });
    const { c, states } = client({ previousLease: { address: parseIpv4('192.0.2.107'), expiresAtEpochMs: clock.epochMs() + 60 * S } });
    await clock.advanceAsync(100);
    expect(states).toEqual(['INIT-REBOOT', 'REBOOTING', 'CHECKING', 'BOUND']);
    expect(c.lease!.address).toBe(parseIpv4('192.0.2.107'));
    expect(s.leases().find((l) => l.address === parseIpv4('192.0.2.107'))?.state).toBe('bound');
  });

  it('an authoritative server still refuses an address outside its pool or taken by another client', async () => {
    const s = server({ authoritative: true });
    const other = new DhcpClient({ transport: net.host('other'), clock, random: new SeededRandom(8), mac: parseMac('02:00:00:00:00:02'), config: net.host('other-config').config, startupDelayMs: { min: 0, max: 0 } });
    other.start();
    await clock.advanceAsync(100);
    expect(other.lease!.address).toBe(parseIpv4('192.0.2.100'));
    const { c, states } = client({ previousLease: { address: parseIpv4('192.0.2.100') } });
    await clock.advanceAsync(100);
    expect(states.slice(0, 3)).toEqual(['INIT-REBOOT', 'REBOOTING', 'INIT']);
    expect(c.lease!.address).not.toBe(parseIpv4('192.0.2.100'));
    expect(s.stats.sent['DHCPNAK']).toBe(1);
  });
});

describe('RFC 2131 §4.4.6 DHCPRELEASE on clean shutdown', () => {
  it('stop() unicasts a RELEASE to the server, removes the address, and the server frees the lease', async () => {
    const s = server();
    const { c, states } = client();
    await clock.advanceAsync(100);
    const lease = c.lease!;
    host.address = lease.address;
    const released: number[] = [];
    c.on('released', (l) => released.push(l.address));
    c.stop();
    const release = fromClient().at(-1)!;
    expect(typeOf(release)).toBe(DhcpMessageType.RELEASE);
    expect(release.d.to).toEqual({ address: SERVER, port: 67 });
    expect(release).toMatchObject({ ciaddr: lease.address, broadcast: false });
    expect(release.options.serverIdentifier).toBe(SERVER);
    expect(released).toEqual([lease.address]);
    expect(states.at(-1)).toBe('STOPPED');
    expect(host.configLog.slice(-3)).toEqual([`clearAddress ${lease.address}`, 'setRouter none', 'setDnsServers ']);
    expect(host.openPorts).toEqual([]);
    await clock.advanceAsync(10);
    expect(s.leases()[0]).toMatchObject({ address: lease.address, state: 'released' });
    // no timers left behind
    const before = net.log.length;
    await clock.advanceAsync(10_000 * S);
    expect(net.log.length).toBe(before);
  });

  it('stop({ release: false }) leaves the address configured', async () => {
    server();
    const { c } = client();
    await clock.advanceAsync(100);
    c.stop({ release: false });
    expect(fromClient().map(typeOf)).toEqual([1, 3]);
    expect(host.address).toBe(parseIpv4('192.0.2.100'));
  });
});

describe('a misbehaving server: unusable leases are refused, counted and backed off from', () => {
  const ACK_OR_OFFER = (m: DhcpMessage) => (typeOf(m) === DhcpMessageType.DISCOVER ? DhcpMessageType.OFFER : DhcpMessageType.ACK);

  it.each([
    ['0.0.0.7', {}, 'unusable-address'],
    ['127.0.0.1', {}, 'unusable-address'],
    ['224.0.0.5', {}, 'unusable-address'],
    ['240.0.0.5', {}, 'unusable-address'],
    ['255.255.255.255', {}, 'unusable-address'],
    ['192.0.2.0', {}, 'address-is-network'],
    ['192.0.2.255', {}, 'address-is-broadcast'],
    ['192.0.2.1', {}, 'address-is-server'],
    ['192.0.2.150', { routers: [parseIpv4('192.0.2.150')] }, 'address-is-router'],
    ['192.0.2.150', { routers: [parseIpv4('192.0.2.255')] }, 'unusable-router'],
    ['192.0.2.150', { routers: [parseIpv4('224.0.0.1')] }, 'unusable-router'],
    ['192.0.2.150', { leaseTime: 0 }, 'zero-lease'],
  ] as const)('an offer of %s (%o) is ignored (%s); a usable offer from another server is taken', async (address, options, reason) => {
    scriptedServer((m) => ({ type: ACK_OR_OFFER(m), yiaddr: parseIpv4(address), options }));
    const { c } = client();
    const refused: string[] = [];
    c.on('refused', (r) => refused.push(r));
    await clock.advanceAsync(100);
    expect(c.state).toBe('SELECTING');
    expect(refused).toEqual([reason]);
    expect(c.stats.drops[`refused-${reason}`]).toBe(1);
    server({}, SERVER2);
    await clock.advanceAsync(20 * S);
    expect(c.state).toBe('BOUND');
    expect(c.lease!.serverIdentifier).toBe(SERVER2);
    expect(fromClient().some((m) => typeOf(m) === DhcpMessageType.DECLINE)).toBe(false);
  });

  it('an offer from a server identifying itself by an unusable address is ignored', async () => {
    scriptedServer((m) => ({ type: ACK_OR_OFFER(m), options: { serverIdentifier: parseIpv4('127.0.0.1') } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.stats.drops['refused-unusable-server']).toBe(1);
    expect(c.state).toBe('SELECTING');
  });

  it('an ACK for an unusable address (the offer was fine) is declined, never configured, and the restarts back off: 10, 20, 40 … s up to 5 min', async () => {
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : { type: DhcpMessageType.ACK, yiaddr: parseIpv4('192.0.2.255') }));
    const { c } = client();
    const waits: number[] = [];
    c.on('waiting', (ms) => waits.push(ms));
    clock.callbackLimit = 10_000;
    await clock.advanceAsync(3_600 * S);
    expect(waits.slice(0, 7)).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
    expect(host.configLog).toEqual([]);
    const declines = fromClient().filter((m) => typeOf(m) === DhcpMessageType.DECLINE);
    expect(declines.length).toBe(waits.length);
    expect(declines[0]!.options).toMatchObject({ requestedAddress: parseIpv4('192.0.2.255'), serverIdentifier: SERVER });
    // An hour of a hostile server costs a handful of exchanges, not a loop.
    expect(waits.length).toBeLessThan(20);
  });

  it('an ACK with a zero-length lease is refused without a DECLINE (the address is not at fault) and backed off from', async () => {
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : { type: DhcpMessageType.ACK, options: { leaseTime: 0 } }));
    const { c } = client();
    const waits: number[] = [];
    c.on('waiting', (ms) => waits.push(ms));
    await clock.advanceAsync(100 * S);
    // Refused at 0, 10, 30 and 70 s.
    expect(waits).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(c.stats.drops['refused-zero-lease']).toBe(4);
    expect(fromClient().some((m) => typeOf(m) === DhcpMessageType.DECLINE)).toBe(false);
    expect(host.configLog).toEqual([]);
  });

  it('a 1-second lease is used as 20 s (the floor): renewals every 10 s, not twice a second', async () => {
    scriptedServer((m) => ({ type: ACK_OR_OFFER(m), options: { leaseTime: 1 } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.lease).toMatchObject({ leaseTimeS: 20, renewalTimeS: 10, rebindingTimeS: 17.5 });
    const requests = () => fromClient().filter((m) => typeOf(m) === DhcpMessageType.REQUEST).length;
    const before = requests();
    await clock.advanceAsync(60 * S);
    expect(requests() - before).toBeLessThanOrEqual(6);
    expect(c.state).toBe('BOUND');
  });

  it('a server that NAKs every REQUEST is asked again after a back-off that doubles to a minute, not at wire speed', async () => {
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : { type: DhcpMessageType.NAK, options: { leaseTime: undefined } }));
    const { c } = client();
    const waits: number[] = [];
    c.on('waiting', (ms) => waits.push(ms));
    clock.callbackLimit = 10_000;
    await clock.advanceAsync(600 * S);
    expect(waits.slice(0, 9)).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    expect(c.stats.received['DHCPNAK']).toBeLessThan(20);
  });

  it('while RENEWING, an ACK with an unusable lease is ignored and the lease in force runs on', async () => {
    let acks = 0;
    scriptedServer((m) => (typeOf(m) === DhcpMessageType.DISCOVER ? { type: DhcpMessageType.OFFER } : acks++ === 0 ? { type: DhcpMessageType.ACK } : { type: DhcpMessageType.ACK, options: { routers: [parseIpv4('0.0.0.0')] } }));
    const { c } = client();
    await clock.advanceAsync(100);
    const lease = c.lease;
    await clock.advanceAsync(301 * S);
    expect(c.stats.drops['refused-unusable-router']).toBe(1);
    expect(c.state).toBe('RENEWING');
    expect(c.lease).toBe(lease);
    expect(fromClient().some((m) => typeOf(m) === DhcpMessageType.DECLINE)).toBe(false);
  });

  it('DNS servers no host can be (loopback, multicast, 0.0.0.0) are left out of the lease', async () => {
    scriptedServer((m) => ({ type: ACK_OR_OFFER(m), options: { dnsServers: [parseIpv4('127.0.0.1'), parseIpv4('192.0.2.53'), parseIpv4('0.0.0.0'), parseIpv4('239.1.1.1')] } }));
    const { c } = client();
    await clock.advanceAsync(100);
    expect(c.lease!.dnsServers).toEqual([parseIpv4('192.0.2.53')]);
  });
});
