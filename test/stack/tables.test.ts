import { describe, expect, it } from 'vitest';
import { flush, lanOf } from './helpers.js';

describe('Observability', () => {
  it('tables() lists interfaces, ARP entries, routes and sockets, including tables registered by other transports', async () => {
    const { hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    a.stack.routes.add({ destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', interfaceIndex: 1 });
    const s = a.stack.createUdpSocket();
    s.bind(5353);
    await a.stack.ping(b.address);
    a.stack.registerSocketTable('tcp', () => [{ protocol: 'tcp', localAddress: '10.0.0.1', localPort: 80, state: 'LISTEN' }]);
    await flush();
    const t = a.stack.tables();
    expect(t.interfaces).toMatchObject([{ index: 1, name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1500, linkUp: true, addresses: ['10.0.0.1/24'] }]);
    expect(t.arp).toMatchObject([{ address: '10.0.0.2', mac: '02:00:00:00:00:02', state: 'reachable' }]);
    expect(t.routes).toMatchObject([
      { destination: '10.0.0.0', prefixLength: 24, gateway: undefined, origin: 'connected' },
      { destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', origin: 'static' },
    ]);
    expect(t.sockets).toEqual([
      { protocol: 'udp', localAddress: '0.0.0.0', localPort: 5353, remoteAddress: undefined, remotePort: undefined, state: 'bound', interface: undefined },
      { protocol: 'tcp', localAddress: '10.0.0.1', localPort: 80, state: 'LISTEN' },
    ]);
    const text = a.stack.formatTables();
    expect(text).toContain('10.0.0.2  02:00:00:00:00:02  reachable');
    expect(text).toContain('0.0.0.0/0    10.0.0.254');
    expect(text).toContain('udp    0.0.0.0:5353');
    expect(text).toContain('tcp    10.0.0.1:80');
  });

  it('counters() reports per-layer received/sent/dropped', async () => {
    const { hosts } = await lanOf(2);
    await hosts[0]!.stack.ping(hosts[1]!.address);
    const c = hosts[1]!.stack.counters();
    expect(c.icmp).toMatchObject({ received: 1, sent: 1 });
    expect(c.arp.received).toBeGreaterThanOrEqual(1);
    expect(Object.keys(c)).toEqual(['ethernet', 'arp', 'ipv4', 'icmp', 'udp']);
  });

  it("emits 'event' for address changes and link state", async () => {
    const { hosts } = await lanOf(1);
    const events: unknown[] = [];
    hosts[0]!.stack.on('event', (e) => events.push(e));
    hosts[0]!.iface.addAddress('192.168.7.1', 24);
    await hosts[0]!.stack.stop();
    expect(events).toEqual([
      { type: 'address-added', interfaceIndex: 1, address: '192.168.7.1', prefixLength: 24 },
      { type: 'link-down', interfaceIndex: 1 },
    ]);
  });
});
