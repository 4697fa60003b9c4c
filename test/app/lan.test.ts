import { beforeEach, describe, expect, it } from 'vitest';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { formatIpv4, parseIpv4, parseMac } from '../../src/wire/address.js';
import { DhcpServer } from '../../src/app/dhcp/server.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import type { DhcpClient, DhcpClientState } from '../../src/app/dhcp/client.js';
import { createStackDhcpClient, createStackResolver, resolverLookup, stackDatagrams } from '../../src/app/stack-adapter.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet, type LookupFunction, type Net } from '../../src/socket/net.js';
import { startTcpService } from '../../src/app/services/tcp.js';

/**
 * Two (or three) Stacks on the in-memory switch: a "router" at 10.0.0.1 running the DHCP and DNS
 * servers, and clients that start with no address at all.
 */
let clock: VirtualClock;
let lan: VirtualLan;
let router: Stack;
let server: DhcpServer;
let dnsServer: DnsAuthoritativeServer;

async function stackOn(mac: string, seed: number): Promise<Stack> {
  const stack = new Stack({ clock, random: new SeededRandom(seed), hostname: `host-${seed}` });
  stack.addInterface(new VirtualNic(lan, parseMac(mac)));
  await stack.start();
  return stack;
}

/** Run the virtual clock in steps until `done()` or `ms` pass. */
async function runUntil(done: () => boolean, ms: number): Promise<void> {
  for (let t = 0; t < ms && !done(); t += 100) {
    await clock.advanceAsync(100);
    await new Promise((resolve) => setImmediate(resolve)); // node:stream's pipe() flows from nextTick
  }
}

beforeEach(async () => {
  clock = new VirtualClock();
  lan = new VirtualLan(clock);
  router = await stackOn('02:00:00:00:00:01', 1);
  router.interfaces[0]!.addAddress('10.0.0.1', 24);
  const transport = stackDatagrams(router);
  server = new DhcpServer({
    transport,
    clock,
    serverAddress: '10.0.0.1',
    prefixLength: 24,
    poolStart: '10.0.0.100',
    poolEnd: '10.0.0.120',
    router: '10.0.0.1',
    dnsServers: ['10.0.0.1'],
    domainName: 'lab.test',
    leaseTimeS: 600,
    reservations: [{ mac: '02:00:00:00:00:99', address: '10.0.0.50' }],
  });
  server.start();
  dnsServer = new DnsAuthoritativeServer({
    transport,
    zone: 'lab.test',
    soa: { minimum: 30 },
    records: [
      { name: 'router.lab.test', type: 'A', address: '10.0.0.1' },
      { name: 'www.lab.test', type: 'CNAME', target: 'router.lab.test' },
    ],
  });
  dnsServer.start();
  await clock.advanceAsync(10);
});

/** A client stack with no start delay, run until its DHCP client is BOUND. */
async function leasedHost(): Promise<{ host: Stack; dhcp: DhcpClient; states: DhcpClientState[] }> {
  const host = await stackOn('02:00:00:00:00:02', 2);
  const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
  const states: DhcpClientState[] = [];
  dhcp.on('state', (s) => states.push(s));
  dhcp.start();
  await runUntil(() => dhcp.state === 'BOUND', 30_000);
  return { host, dhcp, states };
}

/** node:net over a new TCP on the stack. */
function netOn(stack: Stack, lookup?: LookupFunction): Net {
  const tcp = new Tcp(stack.ip, clock, stack.random);
  stack.registerTransport(tcp);
  return createNet(tcp, lookup ? { lookup } : {});
}

/** Settle a promise while running the virtual clock: its value, or the error's code. */
async function settle<T>(promise: Promise<T>, ms = 30_000): Promise<{ value?: T; code?: string }> {
  let outcome: { value?: T; code?: string } | undefined;
  promise.then(
    (value) => (outcome = { value }),
    (error: Error & { code?: string }) => (outcome = { code: error.code ?? String(error) }),
  );
  await runUntil(() => outcome !== undefined, ms);
  if (!outcome) throw new Error(`not settled within ${ms} ms of virtual time`);
  return outcome;
}

describe('DHCP and DNS between two stacks on the virtual LAN', () => {
  it('a client with no address leases one (after an ARP probe), gets a default route and DNS, and resolves a name', async () => {
    const { host, states } = await leasedHost();
    expect(states).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND']);
    // RFC 5227 probing takes a few seconds of (virtual) time
    expect(clock.now()).toBeGreaterThan(3_000);
    expect(host.interfaces[0]!.addresses.map((a) => [a.address, a.prefixLength])).toEqual([[parseIpv4('10.0.0.100'), 24]]);
    expect(host.dnsServers).toEqual([parseIpv4('10.0.0.1')]);
    expect(host.routes.lookup('8.8.8.8')?.gateway).toBe(parseIpv4('10.0.0.1'));

    const resolver = createStackResolver(host);
    const answer = resolver.resolve4('www.lab.test');
    let result: unknown;
    void answer.then((r) => (result = r));
    await runUntil(() => result !== undefined, 5_000);
    expect(result).toEqual(['10.0.0.1']);
    const missing = resolver.lookup('nope.lab.test').catch((e: Error & { code?: string }) => e.code);
    let code: unknown;
    void missing.then((c) => (code = c));
    await runUntil(() => code !== undefined, 5_000);
    expect(code).toBe('ENOTFOUND');
  });

  it('reports progress as events, and probes as RFC 5227 §2.1.1 says: PROBE_WAIT 0–1 s, 3 probes 1–2 s apart, ANNOUNCE_WAIT 2 s', async () => {
    // A sniffer on the switch notes when each ARP probe (sender IP 0.0.0.0) crosses the wire.
    const probes: number[] = [];
    lan.plug({
      label: 'sniffer',
      deliver: (frame) => {
        const arpProbe = frame[12] === 0x08 && frame[13] === 0x06 && frame[21] === 1 && frame.subarray(28, 32).every((b) => b === 0);
        if (arpProbe) probes.push(clock.now());
      },
    });
    const host = await stackOn('02:00:00:00:00:02', 2);
    const dhcp = createStackDhcpClient(host, 1);
    const events: string[] = [];
    let checkingAt = 0;
    let boundAt = 0;
    dhcp.on('waiting', (ms) => events.push(`waiting ${ms}`));
    dhcp.on('discover', (n) => events.push(`discover ${n}`));
    dhcp.on('offer', (address, server) => events.push(`offer ${formatIpv4(address)} from ${formatIpv4(server)}`));
    dhcp.on('checking', (address) => {
      events.push(`checking ${formatIpv4(address)}`);
      checkingAt = clock.now();
    });
    dhcp.on('bound', (lease) => {
      events.push(`bound ${formatIpv4(lease.address)}`);
      boundAt = clock.now();
    });
    const startedAt = clock.now();
    dhcp.start();
    await runUntil(() => dhcp.state === 'BOUND', 30_000);
    const delay = Number(/^waiting (\d+)$/.exec(events[0] ?? '')?.[1]);
    // RFC 2131 §4.4.1: a random 1–10 s before the first DISCOVER (the default)
    expect(delay).toBeGreaterThanOrEqual(1_000);
    expect(delay).toBeLessThanOrEqual(10_000);
    expect(events).toEqual([`waiting ${delay}`, 'discover 1', 'offer 10.0.0.100 from 10.0.0.1', 'checking 10.0.0.100', 'bound 10.0.0.100']);
    // DISCOVER/OFFER/REQUEST/ACK cost no virtual time on this LAN: checking starts when the delay ends
    expect(checkingAt - startedAt).toBeLessThan(delay + 200);
    expect(probes).toHaveLength(3);
    expect(probes[0]! - checkingAt).toBeLessThanOrEqual(1_000);
    for (const gap of [probes[1]! - probes[0]!, probes[2]! - probes[1]!]) {
      expect(gap).toBeGreaterThanOrEqual(1_000);
      expect(gap).toBeLessThanOrEqual(2_000);
    }
    expect(boundAt - probes[2]!).toBe(2_000);
    expect(boundAt - checkingAt).toBeGreaterThanOrEqual(4_000);
    expect(boundAt - checkingAt).toBeLessThanOrEqual(7_000);
  });

  it('two clients get different addresses; a reserved MAC gets its reservation', async () => {
    const a = await stackOn('02:00:00:00:00:02', 2);
    const b = await stackOn('02:00:00:00:00:99', 3);
    const ca = createStackDhcpClient(a, 1, { startupDelayMs: { min: 0, max: 0 } });
    const cb = createStackDhcpClient(b, 1, { startupDelayMs: { min: 0, max: 0 } });
    ca.start();
    cb.start();
    await runUntil(() => ca.state === 'BOUND' && cb.state === 'BOUND', 60_000);
    expect(ca.lease!.address).toBe(parseIpv4('10.0.0.100'));
    expect(cb.lease!.address).toBe(parseIpv4('10.0.0.50'));
  });

  it('renews at T1 over unicast and keeps the address; RELEASE on stop frees it', async () => {
    const host = await stackOn('02:00:00:00:00:02', 2);
    const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
    let renewed = 0;
    dhcp.on('renewed', () => renewed++);
    dhcp.start();
    await runUntil(() => dhcp.state === 'BOUND', 30_000);
    await runUntil(() => renewed > 0, 400_000);
    expect(renewed).toBe(1);
    expect(dhcp.state).toBe('BOUND');
    // The ACK arrived inside send() (the switch is synchronous): no retransmission is left behind
    // to send a stray REQUEST from BOUND half-way to T2.
    await clock.advanceAsync(150_000);
    expect(dhcp.stats.sent['DHCPREQUEST']).toBe(2);
    expect(dhcp.stats.drops).toEqual({});
    expect(host.interfaces[0]!.addresses.map((a) => a.address)).toEqual([parseIpv4('10.0.0.100')]);
    const released: number[] = [];
    let stopped = false;
    const stopAt = clock.now();
    void dhcp.stop().then(() => (stopped = true));
    // The address stays until the RELEASE has left (the server's MAC is known: at once here),
    // plus releaseLingerMs for the NIC.
    expect(host.interfaces[0]!.addresses.map((a) => a.address)).toEqual([parseIpv4('10.0.0.100')]);
    dhcp.on('released', (lease) => released.push(lease.address));
    await runUntil(() => stopped, 2_000);
    expect(clock.now() - stopAt).toBeLessThanOrEqual(200);
    expect(released).toEqual([parseIpv4('10.0.0.100')]);
    expect(host.interfaces[0]!.addresses).toEqual([]);
    expect(host.dnsServers).toEqual([]);
    expect(host.routes.lookup('8.8.8.8')).toBeUndefined();
    expect(host.routes.lookup('10.0.0.1')).toBeUndefined();
    expect(server.leases().find((l) => l.address === parseIpv4('10.0.0.100'))?.state).toBe('released');
  });

  it('stop() holds the address until the RELEASE can leave: the server’s MAC is resolved first', async () => {
    const host = await stackOn('02:00:00:00:00:02', 2);
    const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
    dhcp.start();
    await runUntil(() => dhcp.state === 'BOUND', 30_000);
    // The exchange was all broadcast: the server's MAC is not known yet, so the unicast RELEASE
    // waits for ARP (as in \`spinet run --dhcp\` stopped right after binding).
    expect(host.arp.lookup(1, '10.0.0.1')).toBeUndefined();
    let stopped = false;
    void dhcp.stop().then(() => (stopped = true));
    await runUntil(() => stopped, 2_000);
    expect(host.arp.lookup(1, '10.0.0.1')).toBe('02:00:00:00:00:01');
    expect(server.stats.received['DHCPRELEASE']).toBe(1);
    expect(host.interfaces[0]!.addresses).toEqual([]);
  });

  it('an address already in use on the LAN is declined and another one leased', async () => {
    // a squatter sits on the first pool address without the server knowing
    const squatter = await stackOn('02:00:00:00:00:33', 4);
    squatter.interfaces[0]!.addAddress('10.0.0.100', 24);
    await clock.advanceAsync(10);
    const host = await stackOn('02:00:00:00:00:02', 2);
    const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
    const conflicts: number[] = [];
    dhcp.on('conflict', (a) => conflicts.push(a));
    dhcp.start();
    await runUntil(() => dhcp.state === 'BOUND', 60_000);
    expect(conflicts).toEqual([parseIpv4('10.0.0.100')]);
    expect(dhcp.lease!.address).toBe(parseIpv4('10.0.0.101'));
  });

  it('a lease nobody renews expires: the address, the on-link and default routes and the DNS servers go with it', async () => {
    const { host, dhcp, states } = await leasedHost();
    expect(host.routes.lookup('8.8.8.8')?.gateway).toBe(parseIpv4('10.0.0.1'));
    const boundAt = clock.now();
    server.close();
    let expiredAt = 0;
    dhcp.on('expired', () => (expiredAt = clock.now()));
    for (let t = 0; t < 700_000 && !expiredAt; t += 1_000) await clock.advanceAsync(1_000);
    // 600 s lease: RENEWING at T1 (300 s), REBINDING at T2 (525 s), expiry at 600 s, then INIT again
    expect(states.slice(states.lastIndexOf('BOUND'))).toEqual(['BOUND', 'RENEWING', 'REBINDING', 'INIT', 'SELECTING']);
    expect(expiredAt - boundAt).toBeGreaterThan(590_000);
    expect(expiredAt - boundAt).toBeLessThanOrEqual(601_000);
    expect(host.interfaces[0]!.addresses).toEqual([]);
    expect(host.routes.lookup('8.8.8.8')).toBeUndefined();
    expect(host.routes.lookup('10.0.0.1')).toBeUndefined();
    expect(host.dnsServers).toEqual([]);
    await dhcp.stop();
  });
});

describe('names over the stacks: DNS over TCP, net.createConnection by name, refused queries', () => {
  async function leased(): Promise<Stack> {
    return (await leasedHost()).host;
  }

  it('a reply too big for UDP comes back truncated and is asked again over the stack’s own TCP', async () => {
    // 40 A records: 12 + 16 + 40 × 16 octets > 512, so the UDP answer is TC with no records.
    for (let i = 1; i <= 40; i++) dnsServer.addRecord({ name: 'big.lab.test', type: 'A', address: `10.0.1.${i}` });
    const routerNet = netOn(router);
    routerNet.createServer((socket) => dnsServer.serveStream(socket)).listen(53);
    const host = await leased();

    const overTcp = createStackResolver(host, { net: netOn(host) });
    const answer = await settle(overTcp.resolve4('big.lab.test'));
    expect(answer.value).toHaveLength(40);
    expect(new Set(answer.value)).toEqual(new Set(Array.from({ length: 40 }, (_, i) => `10.0.1.${i + 1}`)));
    expect(overTcp.stats.tcpRetries).toBe(1);

    // Without TCP the resolver has only the truncated reply: no records.
    const udpOnly = createStackResolver(host);
    const partial = await settle(udpOnly.resolve4('big.lab.test'));
    expect(partial.value ?? []).toHaveLength(0);
    expect(udpOnly.stats.tcpRetries).toBe(0);
  });

  it('net.createConnection({ host: name }) resolves through the stack’s resolver; an unknown name fails with ENOTFOUND', async () => {
    await startTcpService(netOn(router), 'echo', 7);
    const host = await leased();
    const resolver = createStackResolver(host);
    const net = netOn(host, resolverLookup(resolver));

    const socket = net.createConnection({ host: 'www.lab.test', port: 7 });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const lookedUp: unknown[] = [];
    socket.on('lookup', (error: Error | null, address: string) => lookedUp.push(error ?? address));
    await settle(new Promise((resolve) => socket.once('connect', resolve)));
    socket.write('hello by name');
    await runUntil(() => Buffer.concat(chunks).toString() === 'hello by name', 5_000);
    expect(Buffer.concat(chunks).toString()).toBe('hello by name');
    expect(lookedUp).toEqual(['10.0.0.1']);
    expect(socket.remoteAddress).toBe('10.0.0.1');
    socket.destroy();

    const missing = net.createConnection({ host: 'nosuch.lab.test', port: 7 });
    const failed = await settle(new Promise((_, reject) => missing.once('error', reject)));
    expect(failed.code).toBe('ENOTFOUND');
  });

  it('a server port with nothing listening answers ICMP port unreachable: the query fails fast with ECONNREFUSED', async () => {
    const host = await leased();
    const resolver = createStackResolver(host, { servers: ['10.0.0.1:5353'] });
    const startedAt = clock.now();
    const outcome = await settle(resolver.resolve4('router.lab.test'));
    expect(outcome.code).toBe('ECONNREFUSED');
    // well inside the first 1 s timeout: the ICMP error ended it, not the timer
    expect(clock.now() - startedAt).toBeLessThan(1_000);
  });
});
