import { describe, expect, it } from 'vitest';
import { formatMac, MAC_BROADCAST } from '../../src/wire/address.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { Stack } from '../../src/stack/stack.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { flush, ip, ipv4Frame, ipv4Of, lanOf, macOf, scripted, udpDatagram } from './helpers.js';
import { createDgram, type RemoteInfo } from '../../src/socket/dgram.js';

const PEER = macOf(0x22);

describe('UDP sockets (node:dgram shape)', () => {
  it('echo: a server bound to a port answers a client on an ephemeral port', async () => {
    const { hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const server = createDgram(b.stack.udp).createSocket();
    let listening = false;
    server.bind(7, () => (listening = true));
    server.on('message', (msg: Buffer, rinfo: RemoteInfo) => server.send(msg, rinfo.port, rinfo.address));
    await flush();
    expect(listening).toBe(true);
    expect(server.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 7 });

    const client = createDgram(a.stack.udp).createSocket();
    const replies: [string, RemoteInfo][] = [];
    client.on('message', (msg: Buffer, rinfo: RemoteInfo) => replies.push([msg.toString(), rinfo]));
    let sentBytes = -1;
    client.send('ping!', 7, b.address, (err, bytes) => {
      expect(err).toBeNull();
      sentBytes = bytes;
    });
    await flush();
    expect(sentBytes).toBe(5);
    expect(replies).toEqual([['ping!', { address: b.address, family: 'IPv4', port: 7, size: 5 }]]);
    const port = client.address().port;
    expect(port).toBeGreaterThanOrEqual(49152);
    expect(port).toBeLessThanOrEqual(65535);
  });

  it('draws ephemeral ports from the injected Random: same seed, same ports', async () => {
    const ports = async () => {
      const { stack } = await scripted();
      return [0, 1, 2].map(() => {
        const s = createDgram(stack.udp).createSocket();
        s.bind();
        return s.address().port;
      });
    };
    expect(await ports()).toEqual(await ports());
  });

  it('refuses a second bind to the same port with EADDRINUSE, unless both use reuseAddr', async () => {
    const { stack } = await scripted();
    createDgram(stack.udp).createSocket().bind(5000);
    const second = createDgram(stack.udp).createSocket();
    const errors: { code: string }[] = [];
    second.on('error', (e: { code: string }) => errors.push(e));
    second.bind(5000);
    await flush();
    expect(errors).toMatchObject([{ code: 'EADDRINUSE', syscall: 'bind', port: 5000 }]);
    const r1 = createDgram(stack.udp).createSocket({ reuseAddr: true });
    const r2 = createDgram(stack.udp).createSocket({ reuseAddr: true });
    r1.bind(6000);
    r2.bind(6000);
    await flush();
    expect(r2.address().port).toBe(6000);
  });

  it('refuses to bind an address that is not ours: EADDRNOTAVAIL', async () => {
    const { stack } = await scripted();
    const s = createDgram(stack.udp).createSocket();
    const errors: { code: string }[] = [];
    s.on('error', (e: { code: string }) => errors.push(e));
    s.bind(5000, '10.0.0.99');
    await flush();
    expect(errors).toMatchObject([{ code: 'EADDRNOTAVAIL' }]);
  });

  it('sending to a broadcast address needs setBroadcast(true): EACCES otherwise, like Node', async () => {
    const { stack } = await scripted();
    const s = createDgram(stack.udp).createSocket();
    const results: (string | null)[] = [];
    s.send('x', 67, '255.255.255.255', (err) => results.push(err && err.code));
    s.send('x', 67, '10.0.0.255', (err) => results.push(err && err.code));
    s.setBroadcast(true);
    s.send('x', 67, '255.255.255.255', (err) => results.push(err && err.code));
    await flush();
    expect(results).toEqual(['EACCES', 'EACCES', null]);
  });

  it('refuses datagrams over 65507 bytes with EMSGSIZE and fragments large ones under it', async () => {
    const { stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const s = createDgram(stack.udp).createSocket();
    const results: (string | null)[] = [];
    s.send(new Uint8Array(65508), 9, '10.0.0.2', (err) => results.push(err && err.code));
    s.send(new Uint8Array(65507), 9, '10.0.0.2', (err) => results.push(err && err.code));
    await flush();
    expect(results).toEqual(['EMSGSIZE', null]);
  });

  it('answers with port unreachable when nothing listens', async () => {
    const { hosts } = await lanOf(2);
    const s = createDgram(hosts[0]!.stack.udp).createSocket();
    s.send('x', 4444, hosts[1]!.address);
    await flush();
    expect(hosts[1]!.stack.counters().udp.dropped['no-socket']).toBe(1);
    expect(hosts[1]!.stack.counters().icmp.sent).toBe(1);
  });

  it('drops a datagram with a bad checksum (counted), accepts checksum 0 (none computed)', async () => {
    const { nic, stack } = await scripted();
    const got: string[] = [];
    const s = createDgram(stack.udp).createSocket();
    s.bind(5000);
    s.on('message', (m: Buffer) => got.push(m.toString()));
    const good = udpDatagram('10.0.0.2', '10.0.0.1', 1234, 5000, new TextEncoder().encode('ok'));
    const bad = good.slice();
    bad[8] ^= 0xff;
    const none = good.slice();
    none[6] = 0;
    none[7] = 0;
    for (const d of [bad, none]) nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: IpProtocol.UDP }, d));
    expect(got).toEqual(['ok']);
    expect(stack.counters().udp.dropped['bad-checksum']).toBe(1);
  });

  it('delivers to the most specific socket: connected over bound address over wildcard', async () => {
    const { nic, stack } = await scripted();
    const got: string[] = [];
    const wildcard = createDgram(stack.udp).createSocket({ reuseAddr: true });
    wildcard.bind(5000);
    wildcard.on('message', () => got.push('wildcard'));
    const specific = createDgram(stack.udp).createSocket({ reuseAddr: true });
    specific.bind(5000, '10.0.0.1');
    specific.on('message', () => got.push('specific'));
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 17 }, udpDatagram('10.0.0.2', '10.0.0.1', 1, 5000, new Uint8Array(1))));
    expect(got).toEqual(['specific']);
  });

  it('loops back datagrams to our own address on the next clock turn', async () => {
    const { clock, stack } = await scripted();
    const got: string[] = [];
    const s = createDgram(stack.udp).createSocket();
    s.bind(5000);
    s.on('message', (m: Buffer, r: RemoteInfo) => got.push(`${m.toString()} from ${r.address}`));
    const c = createDgram(stack.udp).createSocket();
    c.send('self', 5000, '10.0.0.1');
    c.send('lo', 5000, '127.0.0.1');
    await flush();
    clock.advance(0);
    expect(got).toEqual(['self from 10.0.0.1', 'lo from 127.0.0.1']);
  });
});

describe('DHCP-style use: a socket pinned to an interface without an address', () => {
  it('sends from 0.0.0.0:68 to 255.255.255.255:67 and receives the broadcast and unicast answers', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const server = new Stack({ clock, random: new SeededRandom(1) });
    const serverIf = server.addInterface(new VirtualNic(lan, macOf(0x10)));
    const client = new Stack({ clock, random: new SeededRandom(2) });
    client.addInterface(new VirtualNic(lan, macOf(0x20)), { name: 'eth0' });
    await server.start();
    await client.start();
    serverIf.addAddress('10.0.0.254', 24);

    const seen: RemoteInfo[] = [];
    const dhcpd = createDgram(server.udp).createSocket();
    dhcpd.bind(67);
    dhcpd.setBroadcast(true);
    dhcpd.on('message', (_m: Buffer, rinfo: RemoteInfo) => {
      seen.push(rinfo);
      dhcpd.send('offer', 68, '255.255.255.255');
      server.arp.addStatic(1, '10.0.0.50', macOf(0x20)); // servers unicast to chaddr without ARP
      dhcpd.send('ack', 68, '10.0.0.50');
    });

    const dhcp = createDgram(client.udp).createSocket({ interface: 'eth0' });
    dhcp.bind(68);
    dhcp.setBroadcast(true);
    const got: string[] = [];
    dhcp.on('message', (m: Buffer) => got.push(m.toString()));
    const frames: Uint8Array[] = [];
    const nic = client.interfaces[0]!.nic;
    const transmit = nic.transmit.bind(nic);
    nic.transmit = (f) => (frames.push(f), transmit(f));
    dhcp.send('discover', 67, '255.255.255.255');
    await flush();

    expect(seen).toEqual([{ address: '0.0.0.0', family: 'IPv4', port: 68, size: 8 }]);
    expect(formatMac(frames[0]!.subarray(0, 6))).toBe(formatMac(MAC_BROADCAST));
    expect(ipv4Of(frames[0]!).source).toBe(0);
    expect(got).toEqual(['offer', 'ack']);
    expect(ip('10.0.0.50')).toBe(0x0a000032);
  });
});
