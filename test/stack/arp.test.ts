import { describe, expect, it } from 'vitest';
import { formatIpv4, formatMac, MAC_ZERO } from '../../src/wire/address.js';
import { arpFrame, arpOf, flush, ip, ipv4Of, isArpReply, isArpRequest, isIpv4, lanOf, macOf, scripted, sniff } from './helpers.js';
import { createDgram } from '../../src/socket/dgram.js';
import { createNet } from '../../src/socket/net.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { SeededRandom } from '../../src/time/random.js';

const BROADCAST = 'ff:ff:ff:ff:ff:ff';
const PEER = macOf(0x22);
const send = (stack: Awaited<ReturnType<typeof scripted>>['stack'], to: string, port = 9) => {
  const socket = createDgram(stack.udp).createSocket();
  socket.send('x', port, to);
  return socket;
};

describe('ARP resolution (RFC 826)', () => {
  it('given an unknown neighbour, it broadcasts one request, queues the datagram, and sends it when the reply arrives', async () => {
    const { nic, stack } = await scripted();
    send(stack, '10.0.0.2');
    await flush();
    const [request, ...more] = nic.take();
    expect(more).toEqual([]);
    expect(formatMac(request!.subarray(0, 6))).toBe(BROADCAST);
    expect(arpOf(request!)).toMatchObject({ operation: 1, senderIp: ip('10.0.0.1'), targetIp: ip('10.0.0.2'), targetMac: MAC_ZERO });

    nic.inject(arpFrame(2, PEER, '10.0.0.2', macOf(1), '10.0.0.1'));
    const [datagram] = nic.take();
    expect(isIpv4(datagram!)).toBe(true);
    expect(formatMac(datagram!.subarray(0, 6))).toBe(formatMac(PEER));
    expect(stack.arp.lookup(1, '10.0.0.2')).toBe(formatMac(PEER));
  });

  it('answers a request for its own address with a unicast reply, and learns the asker', async () => {
    const { nic, stack } = await scripted();
    nic.inject(arpFrame(1, PEER, '10.0.0.2', MAC_ZERO, '10.0.0.1'));
    const [reply] = nic.take();
    expect(formatMac(reply!.subarray(0, 6))).toBe(formatMac(PEER));
    expect(arpOf(reply!)).toMatchObject({ operation: 2, senderMac: macOf(1), senderIp: ip('10.0.0.1'), targetMac: PEER, targetIp: ip('10.0.0.2') });
    expect(stack.arp.lookup(1, '10.0.0.2')).toBe(formatMac(PEER));
  });

  it('ignores requests for other addresses and does not learn from them (counted)', async () => {
    const { nic, stack } = await scripted();
    nic.inject(arpFrame(1, PEER, '10.0.0.2', MAC_ZERO, '10.0.0.3'));
    expect(nic.take()).toEqual([]);
    expect(stack.arp.entries()).toEqual([]);
    expect(stack.counters().arp.dropped['not-for-us']).toBe(1);
  });

  it('updates an existing entry from any ARP packet of that sender (the RFC 826 merge), e.g. a gratuitous ARP after a NIC swap', async () => {
    const { clock, nic, stack } = await scripted();
    nic.inject(arpFrame(1, PEER, '10.0.0.2', MAC_ZERO, '10.0.0.1'));
    nic.take();
    // (A NIC swap takes longer than the 1 s locktime.)
    clock.advance(1_000);
    const newMac = macOf(0x33);
    nic.inject(arpFrame(1, newMac, '10.0.0.2', MAC_ZERO, '10.0.0.2'));
    expect(stack.arp.lookup(1, '10.0.0.2')).toBe(formatMac(newMac));
  });

  it('keeps at most arpQueueLength datagrams per unresolved neighbour, dropping the oldest (counted)', async () => {
    const { nic, stack } = await scripted({ arpQueueLength: 3 });
    const socket = createDgram(stack.udp).createSocket();
    for (let i = 0; i < 5; i++) socket.send(`d${i}`, 9, '10.0.0.2');
    await flush();
    expect(nic.take().filter(isArpRequest)).toHaveLength(1);
    nic.inject(arpFrame(2, PEER, '10.0.0.2', macOf(1), '10.0.0.1'));
    const sent = nic.take();
    expect(sent.map((f) => String.fromCharCode(...ipv4Of(f).payload.subarray(8)))).toEqual(['d2', 'd3', 'd4']);
    expect(stack.counters().arp.dropped['queue-full']).toBe(2);
  });

  it('sends at most one request per second per address, however much traffic waits', async () => {
    const { clock, nic, stack } = await scripted();
    const socket = createDgram(stack.udp).createSocket();
    for (let t = 0; t < 10; t++) {
      socket.send('x', 9, '10.0.0.2');
      await flush();
      clock.advance(100);
    }
    // 0 ms and 1000 ms: two requests in 1 s of traffic.
    expect(nic.take().filter(isArpRequest)).toHaveLength(2);
  });

  it('retries once a second and, after arpMaxRequests unanswered requests, drops the queue and reports the neighbour unreachable', async () => {
    const { clock, nic, stack } = await scripted({ arpMaxRequests: 5 });
    const events: unknown[] = [];
    stack.on('event', (e) => events.push(e));
    const times: number[] = [];
    const original = nic.transmit.bind(nic);
    nic.transmit = (f) => {
      if (isArpRequest(f)) times.push(clock.now());
      return original(f);
    };
    send(stack, '10.0.0.2');
    await flush();
    clock.advance(10_000);
    expect(times).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(stack.counters().arp.dropped['unresolved']).toBe(1);
    expect(events).toContainEqual({ type: 'neighbour-unreachable', interfaceIndex: 1, address: '10.0.0.2', dropped: 1 });
    expect(stack.arp.entries()).toEqual([]);
  });

  it('fails a TCP connect to an on-link host that never answers ARP with EHOSTUNREACH after the 3 requests (~3 s, as Linux), not a SYN timeout', async () => {
    const { clock, nic, stack } = await scripted();
    const tcp = new Tcp(stack.ip, clock, new SeededRandom(3));
    stack.registerTransport(tcp);
    const requests: number[] = [];
    const original = nic.transmit.bind(nic);
    nic.transmit = (f) => {
      if (isArpRequest(f)) requests.push(clock.now());
      return original(f);
    };
    const client = createNet(tcp).createConnection(80, '10.0.0.2');
    let failed: { code?: string; at: number } | undefined;
    client.on('error', (error: Error & { code?: string }) => (failed = { code: error.code, at: clock.now() }));
    await flush();
    // The socket reports its error on a later tick, as node:net's do.
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    clock.advance(2_999);
    await settle();
    expect(failed).toBeUndefined();
    clock.advance(1);
    await settle();
    expect(requests).toEqual([0, 1000, 2000]);
    expect(failed).toEqual({ code: 'EHOSTUNREACH', at: 3000 });
    expect(stack.tables().sockets.filter((s) => s.protocol === 'tcp')).toEqual([]);
  });

  it('given an entry about to expire that is in use, it re-requests it by unicast before expiry and keeps it alive', async () => {
    const { clock, hosts } = await lanOf(2, { arpEntryLifetimeMs: 300_000, arpRefreshBeforeExpiryMs: 30_000 });
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const frames = sniff(a.nic);
    const socket = createDgram(a.stack.udp).createSocket();
    socket.send('x', 9, b.address);
    await flush();
    expect(frames.filter(isArpRequest)).toHaveLength(1);
    frames.length = 0;

    clock.advance(269_000); // 31 s before expiry: not yet
    socket.send('x', 9, b.address);
    await flush();
    expect(frames.filter(isArpRequest)).toHaveLength(0);

    clock.advance(2_000); // 29 s before expiry: in the refresh window
    socket.send('x', 9, b.address);
    await flush();
    const refresh = frames.filter(isArpRequest);
    expect(refresh).toHaveLength(1);
    expect(formatMac(refresh[0]!.subarray(0, 6))).toBe(formatMac(b.iface.mac)); // unicast, not broadcast

    clock.advance(60_000); // well past the original expiry
    expect(a.stack.arp.lookup(1, b.address)).toBe(formatMac(b.iface.mac));
    const entry = a.stack.arp.entries().find((e) => e.address === b.address)!;
    expect(entry.expiresInMs).toBe(300_000 - 60_000);
  });

  it('lets an unused entry expire after arpEntryLifetimeMs', async () => {
    const { clock, nic, stack } = await scripted({ arpEntryLifetimeMs: 60_000 });
    nic.inject(arpFrame(1, PEER, '10.0.0.2', MAC_ZERO, '10.0.0.1'));
    clock.advance(59_999);
    expect(stack.arp.lookup(1, '10.0.0.2')).toBeDefined();
    clock.advance(1);
    expect(stack.arp.lookup(1, '10.0.0.2')).toBeUndefined();
  });

  it('evicts the least recently used entry when the cache is full, never a static one (counted)', async () => {
    const { clock, nic, stack } = await scripted({ arpCacheSize: 3 });
    stack.arp.addStatic(1, '10.0.0.9', macOf(9));
    nic.inject(arpFrame(1, macOf(2), '10.0.0.2', MAC_ZERO, '10.0.0.1'));
    clock.advance(10);
    nic.inject(arpFrame(1, macOf(3), '10.0.0.3', MAC_ZERO, '10.0.0.1'));
    clock.advance(10);
    send(stack, '10.0.0.2'); // uses .2: now .3 is the least recently used
    await flush();
    clock.advance(10);
    nic.inject(arpFrame(1, macOf(4), '10.0.0.4', MAC_ZERO, '10.0.0.1'));
    expect(stack.arp.entries().map((e) => e.address).sort()).toEqual(['10.0.0.2', '10.0.0.4', '10.0.0.9']);
    expect(stack.counters().arp.dropped['cache-full-evicted']).toBe(1);
  });

  it('uses static entries without asking, and never expires them', async () => {
    const { clock, nic, stack } = await scripted({ arpEntryLifetimeMs: 1000 });
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    send(stack, '10.0.0.2');
    await flush();
    const frames = nic.take();
    expect(frames.filter(isArpRequest)).toHaveLength(0);
    expect(formatMac(frames[0]!.subarray(0, 6))).toBe(formatMac(PEER));
    clock.advance(3_600_000);
    expect(stack.arp.entries()).toMatchObject([{ address: '10.0.0.2', state: 'static' }]);
    expect(stack.arp.remove('10.0.0.2')).toBe(true);
  });
});

describe('Gratuitous ARP and conflict detection (RFC 5227)', () => {
  it('announces a newly added address with a broadcast request whose sender and target are that address', async () => {
    const { nic, iface } = await scripted();
    iface.addAddress('10.0.1.7', 24);
    const [announcement] = nic.take();
    expect(formatMac(announcement!.subarray(0, 6))).toBe(BROADCAST);
    expect(arpOf(announcement!)).toMatchObject({ operation: 1, senderIp: ip('10.0.1.7'), targetIp: ip('10.0.1.7') });
  });

  it('reports a conflict when another host sends ARP from one of our addresses', async () => {
    const { nic, stack } = await scripted();
    const conflicts: unknown[] = [];
    stack.arp.on('conflict', (c) => conflicts.push(c));
    nic.inject(arpFrame(1, PEER, '10.0.0.1', MAC_ZERO, '10.0.0.1'));
    expect(conflicts).toEqual([{ type: 'arp-conflict', interfaceIndex: 1, address: '10.0.0.1', mac: formatMac(PEER) }]);
  });

  it('probe: given nobody answers, the address is free after PROBE_WAIT + 3 probes + ANNOUNCE_WAIT; probes carry sender IP 0.0.0.0', async () => {
    const { clock, nic, stack } = await scripted();
    let result: string | undefined;
    void stack.arp.probe(1, '10.0.0.50').then((r) => (result = r));
    clock.advance(1_000 + 2_000 + 2_000 + 2_000);
    await flush();
    expect(result).toBe('free');
    const probes = nic.take().filter(isArpRequest).map(arpOf);
    expect(probes).toHaveLength(3);
    for (const p of probes) expect(p).toMatchObject({ senderIp: 0, targetIp: ip('10.0.0.50'), targetMac: MAC_ZERO });
  });

  it('probe: given the address is in use, the owner answers and the probe reports a conflict', async () => {
    const { clock, hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    let result: string | undefined;
    void a.stack.arp.probe(1, b.address).then((r) => (result = r));
    clock.advance(1_000);
    await flush();
    expect(result).toBe('conflict');
  });

  it('probe: given another host probes the same address at the same time, it is a conflict', async () => {
    const { clock, nic, stack } = await scripted();
    let result: string | undefined;
    void stack.arp.probe(1, '10.0.0.50').then((r) => (result = r));
    clock.advance(100);
    nic.inject(arpFrame(1, PEER, '0.0.0.0', MAC_ZERO, '10.0.0.50'));
    await flush();
    expect(result).toBe('conflict');
  });
});

describe('ARP between stacks on a LAN', () => {
  it('two stacks resolve each other with one request and one reply', async () => {
    const { hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const fromA = sniff(a.nic);
    const fromB = sniff(b.nic);
    const reply = a.stack.ping(b.address);
    await expect(reply).resolves.toMatchObject({ from: b.address });
    expect(fromA.filter(isArpRequest)).toHaveLength(1);
    expect(fromB.filter(isArpReply)).toHaveLength(1);
    expect(fromB.filter(isArpRequest)).toHaveLength(0); // B learned A from A's request
    expect(formatIpv4(ip(b.address))).toBe(b.address);
  });
});
