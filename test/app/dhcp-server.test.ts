import { beforeEach, describe, expect, it } from 'vitest';
import { DhcpServer, type DhcpServerOptions } from '../../src/app/dhcp/server.js';
import { BOOTREQUEST, DhcpMessageType, emitDhcpMessage, parseDhcpMessage, type DhcpMessage, type DhcpOptions } from '../../src/app/dhcp/wire.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { IPV4_BROADCAST, parseIpv4, parseMac } from '../../src/wire/address.js';
import { FakeNetwork, type Datagram } from './fake-network.js';
import type { DatagramSocket } from '../../src/app/transport.js';

const SERVER = parseIpv4('192.0.2.1');
const A = parseMac('02:00:00:00:00:0a');
const B = parseMac('02:00:00:00:00:0b');
const ip = parseIpv4;

let clock: VirtualClock;
let net: FakeNetwork;
let server: DhcpServer;
let client: DatagramSocket;

function start(options: Partial<DhcpServerOptions> = {}): void {
  server = new DhcpServer({
    transport: net.host('server', SERVER),
    clock,
    serverAddress: SERVER,
    prefixLength: 24,
    poolStart: '192.0.2.100',
    poolEnd: '192.0.2.102',
    router: '192.0.2.1',
    dnsServers: ['192.0.2.53', '192.0.2.54'],
    domainName: 'lab.test',
    leaseTimeS: 600,
    reservations: [{ mac: '02:00:00:00:00:99', address: '192.0.2.50', hostName: 'printer' }],
    ...options,
  });
  server.start();
}

beforeEach(() => {
  clock = new VirtualClock();
  net = new FakeNetwork(clock);
  client = net.host('client').open({ port: 68, broadcast: true });
});

/** Send one client message and return the server's reply (parsed) and where it went. */
async function exchange(type: number, mac: Uint8Array, fields: { xid?: number; ciaddr?: number; giaddr?: number; broadcast?: boolean; options?: DhcpOptions } = {}): Promise<(DhcpMessage & { d: Datagram }) | undefined> {
  const before = net.log.length;
  client.send(
    emitDhcpMessage({ op: BOOTREQUEST, xid: fields.xid ?? 42, chaddr: mac, ciaddr: fields.ciaddr, giaddr: fields.giaddr, broadcast: fields.broadcast ?? true, options: { messageType: type, ...fields.options } }),
    67,
    IPV4_BROADCAST,
  );
  await clock.advanceAsync(5);
  const reply = net.log.slice(before).find((d) => d.from.port === 67);
  if (!reply) return undefined;
  const p = parseDhcpMessage(reply.data);
  if (!p.ok) throw new Error(p.reason);
  return { ...p.message, d: reply };
}

async function lease(mac: Uint8Array, options: DhcpOptions = {}): Promise<number> {
  const offer = await exchange(DhcpMessageType.DISCOVER, mac, { options });
  const ack = await exchange(DhcpMessageType.REQUEST, mac, { options: { ...options, serverIdentifier: SERVER, requestedAddress: offer!.yiaddr } });
  expect(ack!.options.messageType).toBe(DhcpMessageType.ACK);
  return ack!.yiaddr;
}

describe('DHCP server (RFC 2131 §4.3)', () => {
  beforeEach(() => start());

  it('OFFER: first pool address, every configured option, xid/chaddr/flags echoed, broadcast to 68', async () => {
    const offer = await exchange(DhcpMessageType.DISCOVER, A, { xid: 0xabcdef01 });
    expect(offer).toMatchObject({ op: 2, xid: 0xabcdef01, yiaddr: ip('192.0.2.100'), chaddr: A, broadcast: true });
    expect(offer!.d.to).toEqual({ address: IPV4_BROADCAST, port: 68 });
    expect(offer!.options).toMatchObject({
      messageType: DhcpMessageType.OFFER,
      serverIdentifier: SERVER,
      leaseTime: 600,
      subnetMask: ip('255.255.255.0'),
      routers: [SERVER],
      dnsServers: [ip('192.0.2.53'), ip('192.0.2.54')],
      domainName: 'lab.test',
    });
    expect(server.leases()).toMatchObject([{ address: ip('192.0.2.100'), state: 'offered' }]);
  });

  it('REQUEST (SELECTING) commits the lease; the same client gets the same address again', async () => {
    expect(await lease(A)).toBe(ip('192.0.2.100'));
    expect(server.leases()).toMatchObject([{ address: ip('192.0.2.100'), state: 'bound', mac: '02:00:00:00:00:0a', expiresAt: clock.now() - 4 + 600_000 }]);
    expect((await exchange(DhcpMessageType.DISCOVER, A))!.yiaddr).toBe(ip('192.0.2.100'));
  });

  it('different clients get different addresses; option 50 is honoured when free', async () => {
    expect(await lease(A)).toBe(ip('192.0.2.100'));
    expect(await lease(B, { requestedAddress: ip('192.0.2.102') })).toBe(ip('192.0.2.102'));
  });

  it('a reserved MAC always gets its reservation (and its host name); nobody else does', async () => {
    const offer = await exchange(DhcpMessageType.DISCOVER, parseMac('02:00:00:00:00:99'));
    expect(offer).toMatchObject({ yiaddr: ip('192.0.2.50'), options: { hostName: 'printer' } });
    expect((await exchange(DhcpMessageType.DISCOVER, A, { options: { requestedAddress: ip('192.0.2.50') } }))!.yiaddr).toBe(ip('192.0.2.100'));
  });

  it('an exhausted pool answers nothing', async () => {
    for (const mac of ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03']) await lease(parseMac(mac));
    expect(await exchange(DhcpMessageType.DISCOVER, A)).toBeUndefined();
    expect(server.stats.drops['pool-exhausted']).toBe(1);
  });

  it('expired leases are reused, the longest-expired first', async () => {
    for (const mac of ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03']) await lease(parseMac(mac));
    await clock.advanceAsync(601_000);
    expect((await exchange(DhcpMessageType.DISCOVER, A))!.yiaddr).toBe(ip('192.0.2.100'));
  });

  it('a REQUEST naming another server withdraws our offer', async () => {
    await exchange(DhcpMessageType.DISCOVER, A);
    expect(await exchange(DhcpMessageType.REQUEST, A, { options: { serverIdentifier: ip('192.0.2.2'), requestedAddress: ip('192.0.2.200') } })).toBeUndefined();
    expect(server.leases()).toEqual([]);
  });

  it('a REQUEST for an address held by someone else is NAKed, broadcast, with only server id and message', async () => {
    await lease(A);
    const nak = await exchange(DhcpMessageType.REQUEST, B, { broadcast: false, options: { serverIdentifier: SERVER, requestedAddress: ip('192.0.2.100') } });
    expect(nak!.options).toEqual({ messageType: DhcpMessageType.NAK, serverIdentifier: SERVER, message: 'requested address not available' });
    expect(nak).toMatchObject({ yiaddr: 0, broadcast: true });
    expect(nak!.d.to).toEqual({ address: IPV4_BROADCAST, port: 68 });
  });

  describe('INIT-REBOOT (no server id, option 50, ciaddr 0)', () => {
    it('ACKs a client it has a record of', async () => {
      const address = await lease(A);
      const ack = await exchange(DhcpMessageType.REQUEST, A, { options: { requestedAddress: address } });
      expect(ack!.options.messageType).toBe(DhcpMessageType.ACK);
    });
    it('NAKs an address on another network', async () => {
      expect((await exchange(DhcpMessageType.REQUEST, A, { options: { requestedAddress: ip('10.0.0.5') } }))!.options.messageType).toBe(DhcpMessageType.NAK);
    });
    it("NAKs an address that is another client's", async () => {
      await lease(A);
      expect((await exchange(DhcpMessageType.REQUEST, B, { options: { requestedAddress: ip('192.0.2.100') } }))!.options.messageType).toBe(DhcpMessageType.NAK);
    });
    it('stays silent about a free address it has no record of', async () => {
      expect(await exchange(DhcpMessageType.REQUEST, A, { options: { requestedAddress: ip('192.0.2.101') } })).toBeUndefined();
      expect(server.stats.drops['no-record']).toBe(1);
    });
  });

  describe('RENEWING / REBINDING (ciaddr set)', () => {
    it('extends the lease and unicasts the ACK to ciaddr', async () => {
      const address = await lease(A);
      await clock.advanceAsync(300_000);
      const ack = await exchange(DhcpMessageType.REQUEST, A, { ciaddr: address, broadcast: false });
      expect(ack).toMatchObject({ yiaddr: address, ciaddr: address });
      expect(ack!.d.to).toEqual({ address, port: 68 });
      expect(server.leases()[0]!.expiresAt).toBe(clock.now() - 4 + 600_000);
    });
    it("NAKs a renewal of another client's address", async () => {
      await lease(A);
      expect((await exchange(DhcpMessageType.REQUEST, B, { ciaddr: ip('192.0.2.100') }))!.options.messageType).toBe(DhcpMessageType.NAK);
    });
  });

  it('DECLINE quarantines the address; after the hold it is offered again', async () => {
    start({ declineHoldMs: 60_000 });
    await lease(A);
    await exchange(DhcpMessageType.DECLINE, A, { options: { requestedAddress: ip('192.0.2.100'), serverIdentifier: SERVER } });
    expect(server.leases()).toMatchObject([{ address: ip('192.0.2.100'), state: 'declined' }]);
    expect((await exchange(DhcpMessageType.DISCOVER, A))!.yiaddr).toBe(ip('192.0.2.101'));
    expect((await exchange(DhcpMessageType.DISCOVER, B, { options: { requestedAddress: ip('192.0.2.100') } }))!.yiaddr).not.toBe(ip('192.0.2.100'));
    await clock.advanceAsync(61_000);
    expect((await exchange(DhcpMessageType.DISCOVER, parseMac('02:00:00:00:00:0c'), { options: { requestedAddress: ip('192.0.2.100') } }))!.yiaddr).toBe(ip('192.0.2.100'));
  });

  it('RELEASE frees the lease but remembers it for the same client', async () => {
    const address = await lease(A);
    await exchange(DhcpMessageType.RELEASE, A, { ciaddr: address, options: { serverIdentifier: SERVER } });
    expect(server.leases()).toMatchObject([{ address, state: 'released' }]);
    expect((await exchange(DhcpMessageType.DISCOVER, A))!.yiaddr).toBe(address);
  });

  it('a RELEASE from another client is ignored', async () => {
    const address = await lease(A);
    await exchange(DhcpMessageType.RELEASE, B, { ciaddr: address });
    expect(server.leases()).toMatchObject([{ state: 'bound' }]);
  });

  it('INFORM gets configuration without a lease, unicast to ciaddr (RFC 2131 §4.3.5)', async () => {
    const ack = await exchange(DhcpMessageType.INFORM, A, { ciaddr: ip('192.0.2.7'), broadcast: false });
    expect(ack).toMatchObject({ yiaddr: 0 });
    expect(ack!.d.to).toEqual({ address: ip('192.0.2.7'), port: 68 });
    expect(ack!.options.leaseTime).toBeUndefined();
    expect(ack!.options.dnsServers).toEqual([ip('192.0.2.53'), ip('192.0.2.54')]);
  });

  it('answers a relay through giaddr on port 67', async () => {
    const offer = await exchange(DhcpMessageType.DISCOVER, A, { giaddr: ip('192.0.2.254') });
    expect(offer!.d.to).toEqual({ address: ip('192.0.2.254'), port: 67 });
  });

  it('the client identifier, not chaddr, names the client when present (RFC 2131 §4.2)', async () => {
    const id = Uint8Array.of(0, 1, 2, 3);
    const address = await lease(A, { clientIdentifier: id });
    // same identifier from another NIC: same lease
    expect((await exchange(DhcpMessageType.DISCOVER, B, { options: { clientIdentifier: id } }))!.yiaddr).toBe(address);
  });

  it('a client-requested lease time shorter than the configured one is granted', async () => {
    const offer = await exchange(DhcpMessageType.DISCOVER, A, { options: { leaseTime: 60 } });
    expect(offer!.options.leaseTime).toBe(60);
  });

  it('malformed datagrams and BOOTREPLYs are counted and ignored', async () => {
    client.send(new Uint8Array(50), 67, IPV4_BROADCAST);
    client.send(emitDhcpMessage({ op: 2, xid: 1, chaddr: A, options: { messageType: DhcpMessageType.OFFER } }), 67, IPV4_BROADCAST);
    await clock.advanceAsync(5);
    expect(server.stats.drops).toEqual({ truncated: 1, 'not-request': 1 });
  });

  it('rejects a pool outside its subnet', () => {
    expect(() => start({ poolStart: '10.0.0.1', poolEnd: '10.0.0.9' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
