import { describe, expect, it } from 'vitest';
import http from 'node:http';
import type { Socket as NodeSocket } from 'node:net';
import { flush, lanOf } from './helpers.js';
import { formatTables } from '../../src/stack/tables.js';
import type { SocketRow, StackTables } from '../../src/stats/rows.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet } from '../../src/socket/net.js';
import { SeededRandom } from '../../src/time/random.js';
import { boardStatus, renderStatusPage, startStatusPage } from '../../src/app/services/status-page.js';
import { openNode } from '../../tools/node.js';
import { createDgram } from '../../src/socket/dgram.js';

const noTables: StackTables = { interfaces: [], arp: [], routes: [], sockets: [] };

/** The Sockets section of formatTables, as lines. */
function socketLines(sockets: SocketRow[]): string[] {
  const text = formatTables({ ...noTables, sockets });
  return text.slice(text.indexOf('Sockets\n') + 'Sockets\n'.length).trimEnd().split('\n');
}

/** `count` stacks on one LAN, each with spinet's TCP registered as a transport (its sockets and counters join the stack's). */
async function tcpLan(count: number) {
  const lan = await lanOf(count);
  const nodes = lan.hosts.map((h, i) => {
    const tcp = new Tcp(h.stack.ip, lan.clock, new SeededRandom(70 + i));
    h.stack.registerTransport(tcp);
    return { ...h, tcp, net: createNet(tcp) };
  });
  return { ...lan, nodes };
}

describe('Observability', () => {
  it('tables() lists interfaces, ARP entries, routes and sockets, including tables registered by other transports', async () => {
    const { hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    a.stack.routes.add({ destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', interfaceIndex: 1 });
    const s = createDgram(a.stack.udp).createSocket();
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

  it('formatTables() ends with the counters (netstat -s): per layer, drops with their reasons, then TCP’s non-zero counters', async () => {
    const { nodes } = await tcpLan(2);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await a.stack.ping(b.address);
    // a frame for another MAC, and one of an EtherType nobody speaks
    const stray = new Uint8Array(60);
    stray.set([0x02, 0, 0, 0, 0, 0x77], 0);
    stray.set(b.nic.mac, 6);
    b.nic.transmit(stray);
    const ipv6 = new Uint8Array(60);
    ipv6.set(a.nic.mac, 0);
    ipv6.set(b.nic.mac, 6);
    ipv6.set([0x86, 0xdd], 12);
    b.nic.transmit(ipv6);
    b.net.createConnection(9, a.address).on('error', () => undefined); // nothing listens: SYN, RST
    await flush();
    const text = a.stack.formatTables();
    const counters = text.slice(text.indexOf('Counters\n')).split('\n');
    expect(counters[1]).toMatch(/^Layer +Received +Sent +Dropped +Drop reasons$/);
    const c = a.stack.counters();
    const dropped = (layer: keyof typeof c) => Object.values(c[layer].dropped).reduce((x, y) => x + y, 0);
    expect(c.ethernet.dropped).toMatchObject({ 'wrong-mac': 1, 'unknown-ethertype': 1 });
    const ethernetRow = counters.find((l) => l.startsWith('ethernet '))!;
    expect(ethernetRow.split(/ {2,}/).slice(0, 4)).toEqual(['ethernet', String(c.ethernet.received), String(c.ethernet.sent), String(dropped('ethernet'))]);
    expect(ethernetRow).toMatch(/wrong-mac 1/);
    expect(ethernetRow).toMatch(/unknown-ethertype 1/);
    expect(counters.find((l) => l.startsWith('icmp '))).toMatch(/^icmp +1 +1 +0 +-$/);
    const tcpLine = counters.find((l) => l.startsWith('tcp: '))!;
    expect(tcpLine).toContain(`segmentsReceived ${a.tcp.stats.segmentsReceived}`);
    expect(tcpLine).toContain('resetsSent 1');
    expect(tcpLine).not.toMatch(/ 0(,|$)/);
  });

  it('prints a Timer column (netstat -o) when sockets report timers, and none when no socket does', () => {
    const rows: SocketRow[] = [
      { protocol: 'udp', localAddress: '0.0.0.0', localPort: 53, state: 'bound' },
      { protocol: 'tcp', localAddress: '10.0.0.1', localPort: 80, remoteAddress: '0.0.0.0', remotePort: 0, state: 'LISTEN', timer: 'off', timerRemaining: 0 },
      { protocol: 'tcp', localAddress: '10.0.0.1', localPort: 80, remoteAddress: '10.0.0.2', remotePort: 50000, state: 'ESTABLISHED', sendQueue: 1200, timer: 'retransmit', timerRemaining: 204.4 },
      { protocol: 'tcp', localAddress: '10.0.0.1', localPort: 81, remoteAddress: '10.0.0.2', remotePort: 50001, state: 'ESTABLISHED', timer: 'keepalive', timerRemaining: 7_199_990 },
      { protocol: 'tcp', localAddress: '10.0.0.1', localPort: 82, remoteAddress: '10.0.0.2', remotePort: 50002, state: 'TIME-WAIT', timer: 'time-wait', timerRemaining: 59_999 },
    ];
    expect(socketLines(rows)).toEqual([
      'Proto  Local Address  Foreign Address  State        Recv-Q  Send-Q  Timer',
      'udp    0.0.0.0:53     *:*              bound        0       0',
      'tcp    10.0.0.1:80    0.0.0.0:0        LISTEN       0       0       off',
      'tcp    10.0.0.1:80    10.0.0.2:50000   ESTABLISHED  0       1200    retransmit (0.20s)',
      'tcp    10.0.0.1:81    10.0.0.2:50001   ESTABLISHED  0       0       keepalive (7199.99s)',
      'tcp    10.0.0.1:82    10.0.0.2:50002   TIME-WAIT    0       0       time-wait (60.00s)',
    ]);
    // Only UDP (no timers): the plain netstat -an table, as before.
    expect(socketLines([rows[0]!])).toEqual(['Proto  Local Address  Foreign Address  State  Recv-Q  Send-Q', 'udp    0.0.0.0:53     *:*              bound  0       0']);
  });

  it("a CLI node's TCP sockets are in tables() with their timer (and time left), and in the netstat text", async () => {
    // A real node on the built-in simulated LAN (real clock): a connection to the gateway's TCP echo
    // with keepalive on shows its keepalive timer, the listener none.
    const node = await openNode({});
    try {
      const socket = node.net.createConnection(7, '192.0.2.1');
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      socket.setKeepAlive(true, 60_000);
      const row = node.stack.tables().sockets.find((r) => r.protocol === 'tcp' && r.remotePort === 7);
      expect(row).toMatchObject({ state: 'ESTABLISHED', timer: 'keepalive' });
      expect(row!.timerRemaining).toBeGreaterThan(55_000);
      expect(row!.timerRemaining).toBeLessThanOrEqual(60_000);
      expect(node.stack.formatTables()).toMatch(/tcp +192\.0\.2\.10:\d+ +192\.0\.2\.1:7 +ESTABLISHED +0 +0 +keepalive \((59|60)\.\d\ds\)/);
      socket.destroy();
    } finally {
      await node.close();
    }
  });

  it("TCP's counters (registered with the stack as a transport) show in transportCounters() and on the status page", async () => {
    const { clock, nodes } = await tcpLan(2);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    expect(a.stack.transportCounters()).toEqual({ tcp: expect.objectContaining({ segmentsSent: 0, segmentsReceived: 0 }) });
    await startStatusPage(a.net, 80, a.stack);
    // Fetch /status.json from the other stack, through node:http dialling over spinet.
    let body: string | undefined;
    http
      .get({ host: a.address, port: 80, path: '/status.json', createConnection: () => b.net.createConnection(80, a.address) as unknown as NodeSocket }, (res) => {
        let text = '';
        expect(res.statusCode).toBe(200);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => (body = text));
      })
      .on('error', (e) => (body = `error ${e.message}`));
    // (A macrotask turn between steps: node:http and node:stream move on from process.nextTick and setImmediate.)
    for (let i = 0; i < 2_000 && body === undefined; i++) {
      await clock.advanceAsync(5);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const status = JSON.parse(body!) as { counters: Record<string, Record<string, unknown>> };
    // The layers' counters, as before, then TCP's own — what the server had sent and received by the time it answered.
    expect(Object.keys(status.counters)).toEqual(['ethernet', 'arp', 'ipv4', 'icmp', 'udp', 'tcp']);
    const tcp = status.counters.tcp!;
    expect(tcp.passiveOpens).toBe(1);
    expect(tcp.segmentsReceived).toBeGreaterThanOrEqual(2); // SYN, the request (and maybe the handshake's ACK)
    expect(tcp.segmentsSent).toBeGreaterThanOrEqual(1); // SYN-ACK (the response is written after)
    expect(tcp.bytesReceived).toBeGreaterThan(50); // the GET request
    expect(tcp).toHaveProperty('retransmittedSegments', 0);
    expect(tcp).toHaveProperty('dropped.badChecksum', 0);
    // A copy, live at the time it is taken; the HTML page shows the same counters.
    const now = a.stack.transportCounters().tcp!;
    expect(now.segmentsSent).toBe(a.tcp.stats.segmentsSent);
    expect(now.segmentsSent).toBeGreaterThan(tcp.segmentsSent as number);
    expect(now.bytesSent).toBeGreaterThan(body!.length);
    (now as Record<string, unknown>).segmentsSent = -1;
    expect(a.tcp.stats.segmentsSent).toBeGreaterThan(0);
    const page = renderStatusPage(boardStatus(a.stack, 0));
    expect(page).toContain(`<tr><th scope="row">tcp</th><td>${a.tcp.stats.segmentsReceived}</td><td>${a.tcp.stats.segmentsSent}</td><td>0 retransmitted</td></tr>`);
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
