/**
 * The gateway node of the built-in simulated LAN (`--lan sim`, `npm start`): a second spinet
 * stack at 192.0.2.1 that answers ping, runs UDP and TCP echo (port 7), TCP discard (9) and chargen (19), serves DHCP and DNS (UDP and TCP) to the board, an HTTP status page on port 80 and
 * an MQTT broker on port 1883 — lab equipment, so the whole path works with no hardware, no root and
 * no real network.
 *
 * The broker is aedes (an MQTT 3.1.1 broker that takes any Duplex stream as a connection, so it
 * serves spinet's own TCP sockets unchanged); it keeps its sessions in memory and its keep-alive and
 * heartbeat timers on the host's real clock, which is the gateway's clock wherever it is not a test.
 */
import type { Clock } from '../src/time/clock.js';
import type { Random } from '../src/time/random.js';
import { Stack } from '../src/stack/stack.js';
import { parseIpv4 } from '../src/wire/address.js';
import { VirtualNic, type VirtualLan } from '../hal/lan/switch.js';
import { startUdpService } from '../src/app/services/udp.js';
import { startTcpService } from '../src/app/services/tcp.js';
import { stackDatagrams } from '../src/app/stack-adapter.js';
import { DhcpServer } from '../src/app/dhcp/server.js';
import { DnsAuthoritativeServer } from '../src/app/dns/server.js';
import { DNS_DEFAULTS } from '../src/app/dns/options.js';
import { startStatusPage } from '../src/app/services/status-page.js';
import { Tcp } from '../src/tcp/tcp.js';
import { createNet, type Net } from '../src/socket/net.js';
import { Aedes } from 'aedes';

export const LAB_GATEWAY_ADDRESS = parseIpv4('192.0.2.1');
export const LAB_PREFIX_LENGTH = 24;
export const LAB_GATEWAY_MAC = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x01);
/** IANA's port for MQTT without TLS (MQTT 3.1.1 §4.2). */
export const LAB_MQTT_PORT = 1883;

export class LabGateway {
  readonly domain = 'lan';

  private constructor(
    readonly stack: Stack,
    private readonly nic: VirtualNic,
    readonly dhcp: DhcpServer,
    /** node:net over the gateway's own TCP: what `npm start` uses to reach the board's services. */
    readonly net: Net,
    private readonly closers: (() => void)[],
  ) {}

  /** `leaseTimeS`: the DHCP lease it hands out (default an hour; the soak uses short ones, to renew often). */
  static async start(options: { clock: Clock; random: Random; lan: VirtualLan; leaseTimeS?: number }): Promise<LabGateway> {
    const nic = new VirtualNic(options.lan, LAB_GATEWAY_MAC, 'gateway0');
    const stack = new Stack({ clock: options.clock, random: options.random, hostname: 'gateway' });
    const iface = stack.addInterface(nic);
    const tcp = new Tcp(stack.ip, options.clock, options.random, {}, stack.containment);
    stack.registerTransport(tcp);
    const net = createNet(tcp);
    await stack.start();
    iface.addAddress(LAB_GATEWAY_ADDRESS, LAB_PREFIX_LENGTH);
    const echo = await startUdpService(stack, 'echo', 7);
    // TCP echo too: a peer for TCP through the board with nothing but the simulated LAN.
    const tcpEcho = await startTcpService(net, 'echo', 7);
    // A sink and a source: one direction at a time through the board (bench/bridge.bench.ts).
    const tcpDiscard = await startTcpService(net, 'discard', 9);
    const tcpChargen = await startTcpService(net, 'chargen', 19);
    const transport = stackDatagrams(stack);
    const dhcp = new DhcpServer({
      transport,
      clock: options.clock,
      serverAddress: LAB_GATEWAY_ADDRESS,
      prefixLength: LAB_PREFIX_LENGTH,
      poolStart: '192.0.2.100',
      poolEnd: '192.0.2.199',
      router: LAB_GATEWAY_ADDRESS,
      dnsServers: [LAB_GATEWAY_ADDRESS],
      domainName: 'lan',
      leaseTimeS: options.leaseTimeS ?? 3600,
      interfaceIndex: iface.index,
      // The only server on this LAN, and a new one every run: a board asking again for the address
      // it remembers (--lease-file, INIT-REBOOT) gets it rather than silence.
      authoritative: true,
    });
    dhcp.start();
    const dns = new DnsAuthoritativeServer({
      transport,
      zone: 'lan',
      records: [
        { name: 'gateway.lan', type: 'A', address: LAB_GATEWAY_ADDRESS },
        { name: 'www.lan', type: 'CNAME', target: 'gateway.lan' },
      ],
    });
    dns.start();
    // DNS over TCP too, where a resolver asks again when a reply did not fit in 512 octets (RFC 7766).
    const dnsTcp = net.createServer((socket) => dns.serveStream(socket));
    const closers = [() => echo.close(), () => void tcpEcho.close(), () => void tcpDiscard.close(), () => void tcpChargen.close(), () => dhcp.close(), () => dns.close(), () => void dnsTcp.close()];
    const gateway = new LabGateway(stack, nic, dhcp, net, closers);
    try {
      await new Promise<void>((resolve, reject) => {
        dnsTcp.once('error', reject);
        dnsTcp.listen(DNS_DEFAULTS.serverPort, () => resolve());
      });
      // An HTTP page (the gateway's own status: its tables and counters) for `spinet get` to fetch.
      const http = await startStatusPage(net, 80, stack);
      closers.push(() => void http.close());
      // MQTT, for a client on the board (examples/mqtt-client.mjs) with no broker to install.
      const broker = await Aedes.createBroker();
      const mqtt = net.createServer((socket) => broker.handle(socket));
      closers.push(() => void mqtt.close(), () => broker.close());
      await new Promise<void>((resolve, reject) => {
        mqtt.once('error', reject);
        mqtt.listen(LAB_MQTT_PORT, () => resolve());
      });
    } catch (error) {
      await gateway.stop();
      throw error;
    }
    return gateway;
  }

  async stop(): Promise<void> {
    for (const close of this.closers) close();
    await this.stack.stop();
    await this.nic.stop();
  }
}
