import { createServer, type Server as NodeServer, type Socket as NodeSocket } from 'node:net';
import { openNode, untilInterrupted, type Values } from '../node.js';
import { startServices } from '../services.js';
import { UsageError } from '../options.js';
import { formatIpv4 } from '../../src/wire/address.js';
import type { Net } from '../../src/socket/net.js';

/**
 * `spinet start` (what `npm start` runs): the whole user workflow with no hardware. A simulated Uno
 * runs the real bridge sketch in avr8js with an emulated ENC28J60 on its SPI pins; the chip's cable
 * plugs into the built-in LAN, where a gateway node serves DHCP and DNS. The board takes a lease,
 * resolves the gateway by name, pings it, then serves its status page and TCP echo. Two local ports
 * on 127.0.0.1 are forwarded to those services *through the gateway node*, so `curl` on this machine
 * travels: Linux TCP → gateway's spinet TCP → simulated LAN → emulated chip → SPI → sketch → serial
 * bridge → driver → the board's spinet stack.
 */
export async function start(values: Values): Promise<number> {
  const httpPort = parsePort(values['http-port'], 'http-port');
  const echoPort = parsePort(values['echo-port'], 'echo-port');
  const board = (values.board as string | undefined) ?? 'sim';
  const say = (m: string) => console.error(m);
  const t0 = Date.now();
  const node = await openNode({ ...values, board, lan: 'sim', dhcp: true }, (m) => say(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`));
  const forwards: NodeServer[] = [];
  const open = new Set<NodeSocket>();
  try {
    const address = node.iface.addresses[0];
    if (!address) throw new Error('the board has no address after DHCP');
    const boardIp = formatIpv4(address.address);

    const name = `gateway.${node.gateway!.domain}`;
    const found = await node.dns.lookup(name, { family: 4 });
    say(`DNS: ${name} → ${found.address} (asked ${node.stack.dnsServers.map(formatIpv4).join(', ')})`);
    for (let i = 1; i <= 3; i++) {
      try {
        const reply = await node.stack.ping(found.address, { timeoutMs: 2000 });
        say(`ping ${found.address}: seq=${i} ${reply.bytes} bytes ttl=${reply.ttl} time=${reply.rttMs.toFixed(1)} ms`);
      } catch (error) {
        say(`ping ${found.address}: seq=${i} ${(error as { code?: string }).code ?? String(error)}`);
      }
    }

    const services = await startServices(node.stack, node.net, ['http:80', 'echo:7'], () => ({ board: String(board), lease: boardIp }));
    for (const s of services.describe()) say(`board ${boardIp}: serving ${s}`);
    const gatewayNet = node.gateway!.net;
    forwards.push(await forward(gatewayNet, httpPort, boardIp, 80, open));
    forwards.push(await forward(gatewayNet, echoPort, boardIp, 7, open));
    const [http, echo] = forwards.map((f) => (f.address() as { port: number }).port);
    console.log(`spinet is up: the simulated board is ${boardIp} on the simulated LAN.`);
    console.log(`  status page:  curl http://127.0.0.1:${http}/`);
    console.log(`  TCP echo:     socat - TCP:127.0.0.1:${echo}`);
    console.log('Ctrl-C to stop.');
    const signal = await untilInterrupted();
    say(`\n${signal}: shutting down (closing connections, releasing the DHCP lease)`);
    for (const socket of open) socket.destroy();
    await Promise.all(forwards.map((f) => new Promise((r) => f.close(() => r(undefined)))));
    forwards.length = 0;
    await services.close();
    console.log(node.stack.formatTables());
  } finally {
    for (const socket of open) socket.destroy();
    for (const f of forwards) f.close();
    await node.close();
  }
  return 0;
}

function parsePort(value: unknown, name: string): number {
  const port = Number(value ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${name} must be a port number (0 for any free port)`);
  return port;
}

/** A 127.0.0.1 listener whose every connection is piped into a spinet connection to host:port. */
async function forward(net: Net, localPort: number, host: string, port: number, open: Set<NodeSocket>): Promise<NodeServer> {
  const server = createServer({ allowHalfOpen: true }, (local) => {
    open.add(local);
    const remote = net.createConnection({ host, port });
    local.pipe(remote);
    remote.pipe(local);
    const finish = () => {
      open.delete(local);
      local.destroy();
      remote.destroy();
    };
    local.on('error', finish);
    remote.on('error', finish);
    local.on('close', finish);
    remote.on('close', finish);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: Error & { code?: string }) => reject(e.code === 'EADDRINUSE' ? new UsageError(`127.0.0.1:${localPort} is in use; pick another with --http-port/--echo-port (0: any free port)`) : e));
    server.listen(localPort, '127.0.0.1', () => resolve());
  });
  return server;
}
