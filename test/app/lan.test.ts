import { beforeEach, describe, expect, it } from 'vitest';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { formatIpv4, parseIpv4, parseMac } from '../../src/wire/address.js';
import { DhcpServer } from '../../src/app/dhcp/server.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import type { DhcpClientState } from '../../src/app/dhcp/client.js';
import { createStackDhcpClient, createStackResolver, stackDatagrams } from '../../src/app/stack-adapter.js';

/**
 * Two (or three) Stacks on the in-memory switch: a "router" at 10.0.0.1 running the DHCP and DNS
 * servers, and clients that start with no address at all.
 */
let clock: VirtualClock;
let lan: VirtualLan;
let router: Stack;
let server: DhcpServer;

async function stackOn(mac: string, seed: number): Promise<Stack> {
  const stack = new Stack({ clock, random: new SeededRandom(seed), hostname: `host-${seed}` });
  stack.addInterface(new VirtualNic(lan, parseMac(mac)));
  await stack.start();
  return stack;
}

/** Run the virtual clock in steps until `done()` or `ms` pass. */
async function runUntil(done: () => boolean, ms: number): Promise<void> {
  for (let t = 0; t < ms && !done(); t += 100) await clock.advanceAsync(100);
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
  new DnsAuthoritativeServer({
    transport,
    zone: 'lab.test',
    soa: { minimum: 30 },
    records: [
      { name: 'router.lab.test', type: 'A', address: '10.0.0.1' },
      { name: 'www.lab.test', type: 'CNAME', target: 'router.lab.test' },
    ],
  }).start();
  await clock.advanceAsync(10);
});

describe('DHCP and DNS between two stacks on the virtual LAN', () => {
  it('a client with no address leases one (after an ARP probe), gets a default route and DNS, and resolves a name', async () => {
    const host = await stackOn('02:00:00:00:00:02', 2);
    const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
    const states: DhcpClientState[] = [];
    dhcp.on('state', (s) => states.push(s));
    dhcp.start();
    await runUntil(() => dhcp.state === 'BOUND', 30_000);
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
});
