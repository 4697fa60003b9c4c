import { openNode, untilInterrupted, type Forward, type SpinetNode, type Values } from '../node.js';
import { startServices } from '../services.js';
import { consoleSetup } from '../console/index.js';
import type { ConsoleServer } from '../console/server.js';
import { UsageError } from '../options.js';
import { formatIpv4 } from '../../src/wire/address.js';

const DEFAULT_HTTP_PORT = '8080';
const DEFAULT_ECHO_PORT = '8007';

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
  const httpPort = parsePort(values['http-port'] ?? DEFAULT_HTTP_PORT, 'http-port');
  const echoPort = parsePort(values['echo-port'] ?? DEFAULT_ECHO_PORT, 'echo-port');
  const board = (values.board as string | undefined) ?? 'sim';
  const say = (m: string) => console.error(m);
  const t0 = Date.now();
  const operatorConsole = consoleSetup(values.console);
  const node = await openNode({ ...values, board, lan: 'sim', dhcp: true }, (m) => say(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`), operatorConsole.extras);
  let server: ConsoleServer | undefined;
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

    const services = await startServices(node.stack, node.net, ['http:80', 'echo:7']);
    for (const s of services.describe()) say(`board ${boardIp}: serving ${s}`);
    const http = await forwardTo(node, 80, httpPort, values['http-port'] === undefined, say);
    const echo = await forwardTo(node, 7, echoPort, values['echo-port'] === undefined, say);
    // Listening for Ctrl-C before saying so: a signal right after the lines still shuts down cleanly.
    const interrupted = untilInterrupted();
    server = await operatorConsole.start(node);
    console.log(`spinet is up: the simulated board is ${boardIp} on the simulated LAN.`);
    console.log(`  status page:  curl http://127.0.0.1:${http.port}/`);
    console.log(`  TCP echo:     socat - TCP:127.0.0.1:${echo.port}`);
    if (server) console.log(`  console:      ${server.url}  (watch the stack work: tables, plots, live frames; this computer only)`);
    console.log('Ctrl-C to stop.');
    const signal = await interrupted;
    say(`\n${signal}: shutting down (closing connections, releasing the DHCP lease)`);
    await Promise.all([http, echo].map((f) => f.close()));
    await services.close();
    console.log(node.stack.formatTables());
  } finally {
    await server?.close();
    await node.close();
  }
  return 0;
}

function parsePort(value: unknown, name: string): number {
  const port = Number(value ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--${name} must be a port number (0 for any free port)`);
  return port;
}

/**
 * Forward 127.0.0.1:`localPort` to the board's `port`. A default port that is taken (another
 * spinet, a dev server) is not an error: any free port is taken instead, and said so; a port the
 * user chose that is taken is a usage error naming the option.
 */
async function forwardTo(node: SpinetNode, port: number, localPort: number, defaulted: boolean, say: (m: string) => void): Promise<Forward> {
  try {
    return await node.forward(port, localPort);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    const option = port === 80 ? 'http-port' : 'echo-port';
    if (!defaulted) throw new UsageError(`127.0.0.1:${localPort} is in use; pick another with --${option} (0: any free port)`);
    const f = await node.forward(port, 0);
    say(`127.0.0.1:${localPort} is in use (--${option}'s default): forwarding 127.0.0.1:${f.port} instead`);
    return f;
  }
}
