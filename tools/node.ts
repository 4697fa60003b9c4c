/**
 * Builds one spinet "node" from command-line options: the LAN its cable plugs into, the board
 * (virtual, mock, sim, serial), frame capture, the stack and its address. Every command that talks
 * to a network (run, ping, get, resolve, start) goes through here, so they accept the same options.
 */
import { RealClock } from '../src/time/real-clock.js';
import { CryptoRandom } from '../src/time/random.js';
import type { Clock } from '../src/time/clock.js';
import type { Nic } from '../src/link/nic.js';
import { Stack, type NetInterface } from '../src/stack/stack.js';
import { formatIpv4, formatMac, isMulticastIpv4, isMulticastMac, parseCidr, parseMac, prefixMask, sameSubnet, tryParseIpv4, type Ipv4Address, type MacAddress } from '../src/wire/address.js';
import { closeSync, openSync } from 'node:fs';
import { CaptureNic, type CaptureSink } from '../src/capture/capture.js';
import { createTraceHook, type TraceHook } from '../src/stats/trace.js';
import { createCaptureSinks } from '../src/capture/sinks.js';
import type { ByteSink } from '../src/capture/pcapng.js';
import { VirtualLan } from '../hal/lan/switch.js';
import { parseLanSpec, TapAttachment } from '../hal/lan/tap.js';
import { LabGateway, LAB_GATEWAY_ADDRESS } from './lab-gateway.js';
import { checkBoardOptions, connectBoard, type BoardChoice, type OpenBoard } from './boards.js';
import { UsageError } from './options.js';
import { Tcp } from '../src/tcp/tcp.js';
import { createNet, type Net } from '../src/socket/net.js';
import { createStackDhcpClient, createStackResolver, resolverLookup } from '../src/app/stack-adapter.js';
import type { DnsResolver } from '../src/app/dns/resolver.js';
import type { DhcpClient, DhcpLease, RememberedLease } from '../src/app/dhcp/client.js';
import { readLeaseFile, writeLeaseFile } from './lease-file.js';
import { Agent as HttpAgent, type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer, isIP, type Socket as NodeSocket } from 'node:net';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { createDgram, type Dgram } from '../src/socket/dgram.js';
import type { StackTables, TransportCountersReport } from '../src/stack/stack.js';
import type { StackCountersSnapshot } from '../src/stats/counters.js';
import { SpinetIO } from '../hal/johnny-five/spinet-io.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

/** spinet's default MAC: locally administered (bit 1 of the first octet), unicast. */
export const DEFAULT_MAC = '02:5e:00:00:00:0a';
export const DEFAULT_SIM_ADDRESS = '192.0.2.10/24';

export interface SpinetNode {
  readonly clock: Clock;
  readonly stack: Stack;
  readonly iface: NetInterface;
  /** What the stack talks to: the board's NIC, or the capture wrapped around it. */
  readonly nic: Nic;
  /** The board below the stack: its NIC, chip and serial link. */
  readonly board: OpenBoard;
  /** The capture around the board's NIC, when anything records frames. */
  readonly capture?: CaptureNic;
  /** The layers' trace hook (off until someone sets `emit`). */
  readonly trace: TraceHook;
  readonly lan: VirtualLan;
  /** The gateway node on the built-in LAN (`--lan sim`). */
  readonly gateway?: LabGateway;
  readonly tap?: TapAttachment;
  readonly tcp: Tcp;
  /** node:net over spinet's TCP, resolving names through `dns`. */
  readonly net: Net;
  /** node:dgram over spinet's UDP. */
  readonly dgram: Dgram;
  /** Names through spinet's resolver, promises like node:dns's `dns.promises` (lookup, resolve4, …). */
  readonly dns: DnsResolver;
  /** An http.Agent whose connections are spinet TCP sockets: `http.get(url, { agent: node.agent })`. */
  readonly agent: HttpAgent;
  /**
   * An https.Agent whose connections are Node's TLS over spinet TCP sockets, the certificate
   * checked as https.get checks it (`ca` for a private CA): `https.get(url, { agent: node.httpsAgent({ ca }) })`.
   */
  httpsAgent(options?: HttpsAgentOptions): HttpsAgent;
  /**
   * The johnny-five IO plugin over the board's spare pins (`new five.Board({ io: node.io })`):
   * boards with the bridge sketch (sim, serial) only; made on first use.
   */
  readonly io: SpinetIO;
  /** The stack's tables (interfaces, ARP, routes, sockets) and counters, as plain data. */
  stats(): SpinetStats;
  /**
   * On the built-in LAN: a 127.0.0.1 listener (port `localPort`, default any free one) whose every
   * connection reaches the board's TCP `port` through the gateway node, so a browser or curl on
   * this machine can talk to what the board serves.
   */
  forward(port: number, localPort?: number): Promise<Forward>;
  readonly dhcp?: DhcpClient;
  /** Tear down in order: stack, capture (flushed), board, LAN attachments. */
  close(): Promise<void>;
}

export type Progress = (message: string) => void;

export interface Forward {
  /** The local port (127.0.0.1) that is forwarded. */
  readonly port: number;
  close(): Promise<void>;
}

export interface SpinetStats extends StackTables {
  readonly counters: StackCountersSnapshot;
  readonly transports: TransportCountersReport;
}

/** https.Agent over spinet's TCP: Node's TLS on a spinet socket, with the usual certificate check. */
export class SpinetHttpsAgent extends HttpsAgent {
  constructor(
    private readonly net: Net,
    options?: HttpsAgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: ConnectionOptions & { host?: string | null; port?: number | null }, _callback?: unknown): Duplex {
    const host = options.host ?? 'localhost';
    const socket = this.net.createConnection({ host, port: options.port ?? 443 }) as unknown as Duplex;
    return tlsConnect({ ...options, host, socket, servername: options.servername ?? (isIP(host) ? undefined : host) });
  }
}

/** http.Agent over spinet's TCP: node:http pools and reuses these connections as its own. */
export class SpinetHttpAgent extends HttpAgent {
  constructor(
    private readonly net: Net,
    options?: AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: { host?: string | null; port?: number | null }, _callback?: unknown): Duplex {
    return this.net.createConnection({ host: options.host ?? 'localhost', port: options.port ?? 80 }) as unknown as Duplex;
  }
}

/** What a command adds to the node it opens. */
export interface NodeExtras {
  /** spinet run: the frame log (--log) is the command's output, on stdout. */
  readonly logToStdout?: boolean;
  /** Capture sinks besides --log/--pcap: `spinet log`'s output, the console's frame log. */
  readonly sinks?: readonly CaptureSink[];
  /** The chip's receive filter off (`spinet log --promisc`). */
  readonly promiscuous?: boolean;
  /** The clock the node runs on (default: a new RealClock), when a sink needs it before the node exists. */
  readonly clock?: Clock;
}

function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The static configuration (`--ip`, `--gateway`, `--dns`), checked. */
interface StaticConfig {
  readonly address: Ipv4Address;
  readonly prefixLength: number;
  readonly text: string;
  readonly gateway?: Ipv4Address;
  readonly dns: readonly Ipv4Address[];
}

/**
 * Every option openNode takes, checked before anything starts (no LAN, board or TAP is brought up
 * for a command line that is wrong): usage errors exit 2 with a message that says what to change.
 */
export function checkNodeOptions(values: Values): {
  board: BoardChoice;
  lanSpec: ReturnType<typeof parseLanSpec> | { readonly kind: 'physical' };
  mac: MacAddress;
  config?: StaticConfig;
  log: 'none' | 'text' | 'json';
  pcap?: string;
} {
  const board = checkBoardOptions({ board: str(values, 'board'), chip: str(values, 'chip'), port: str(values, 'port'), baud: str(values, 'baud') });
  // A real board's cable is a real cable: --lan only says where emulated chips plug in.
  const physical = board.kind === 'serial';
  const lanSpec = physical ? ({ kind: 'physical' } as const) : usage(() => parseLanSpec(str(values, 'lan') ?? 'sim'));
  const onSim = lanSpec.kind === 'sim';
  const mac = usage(() => parseMac(str(values, 'mac') ?? DEFAULT_MAC));
  if (isMulticastMac(mac)) throw new UsageError(`--mac ${formatMac(mac)} is a group (multicast/broadcast) address; an interface needs a unicast one (first octet even, e.g. 02:…)`);
  const log = str(values, 'log') ?? 'none';
  if (log !== 'none' && log !== 'text' && log !== 'json') throw new UsageError(`--log must be text, json or none, not '${log}'`);
  const pcap = str(values, 'pcap');
  if (pcap && pcap !== '-') {
    // Fail now, not silently at the end: the capture file must be writable.
    try {
      closeSync(openSync(pcap, 'w'));
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      const why = e.message.replace(/^[A-Z]+: /, '').replace(/, open .*$/, '');
      throw Object.assign(new Error(`cannot write the capture file ${pcap} (${why})`), { code: e.code ?? 'EIO' });
    }
  }
  const dhcp = values.dhcp === true;
  const dnsList = (values.dns as string[] | undefined) ?? [];
  if (dhcp) {
    const clash = ['ip', 'gateway'].filter((name) => str(values, name) !== undefined).concat(dnsList.length ? ['dns'] : []);
    if (clash.length) throw new UsageError(`--dhcp takes the address, gateway and DNS servers from the server: drop ${clash.map((n) => `--${n}`).join(', ')} (or --dhcp)`);
    return { board, lanSpec, mac, log, ...(pcap ? { pcap } : {}) };
  }
  if (str(values, 'lease-file') !== undefined) throw new UsageError('--lease-file remembers a DHCP lease: it needs --dhcp');
  const text = str(values, 'ip') ?? (onSim ? DEFAULT_SIM_ADDRESS : undefined);
  if (!text) throw new UsageError(`give --ip A/N (or --dhcp) ${physical ? 'for a real board' : 'on a TAP LAN'}`);
  const { address, prefixLength } = usage(() => parseCidr(text));
  const mask = prefixMask(prefixLength);
  const hostPart = address & ~mask;
  if (address === 0 || isMulticastIpv4(address) || address === 0xffffffff || address >>> 24 === 127) {
    throw new UsageError(`--ip ${text}: not an address an interface can have (unspecified, multicast, broadcast or loopback)`);
  }
  if (prefixLength <= 30 && (hostPart === 0 || hostPart === (~mask >>> 0))) {
    throw new UsageError(`--ip ${text}: that is the network's ${hostPart === 0 ? 'own (network)' : 'broadcast'} address; pick a host address in it`);
  }
  const gatewayText = str(values, 'gateway') ?? (onSim ? formatIpv4(LAB_GATEWAY_ADDRESS) : undefined);
  const ipv4 = (option: string, value: string): Ipv4Address => {
    const parsed = tryParseIpv4(value);
    if (parsed === undefined) throw new UsageError(`--${option} ${value}: not an IPv4 address (like 192.0.2.1)`);
    return parsed;
  };
  const gateway = gatewayText === undefined ? undefined : ipv4('gateway', gatewayText);
  if (gateway !== undefined && (!sameSubnet(gateway, address, prefixLength) || gateway === address)) {
    // As Linux refuses it ("Nexthop has invalid gateway"): the gateway must be reachable on the link.
    throw new UsageError(`--gateway ${gatewayText} is not on the ${formatIpv4((address & mask) >>> 0)}/${prefixLength} network of --ip ${text}: a gateway must be another host on the link`);
  }
  const dns = dnsList.length ? dnsList.map((d) => ipv4('dns', d)) : onSim ? [LAB_GATEWAY_ADDRESS] : [];
  return { board, lanSpec, mac, log, ...(pcap ? { pcap } : {}), config: { address, prefixLength, text, ...(gateway !== undefined ? { gateway } : {}), dns } };
}

export async function openNode(values: Values, progress: Progress = () => undefined, options: NodeExtras = {}): Promise<SpinetNode> {
  // The clock's timers alone do not hold the process (a connection in TIME-WAIT after close() must
  // not keep a program running for a minute); an open node does, as an open serial port would.
  const clock = options.clock ?? new RealClock({ unref: true });
  const random = new CryptoRandom();
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Best effort: keep tearing down the rest.
      }
    }
    cleanups.length = 0;
    clearInterval(keepAlive);
  };

  try {
    const checked = checkNodeOptions(values);
    const { lanSpec, mac } = checked;
    const lan = new VirtualLan(clock);
    let gateway: LabGateway | undefined;
    let tap: TapAttachment | undefined;
    if (lanSpec.kind === 'sim') {
      gateway = await LabGateway.start({ clock, random, lan });
      cleanups.push(() => gateway!.stop());
      progress(`LAN: built-in simulated LAN, gateway ${formatIpv4(LAB_GATEWAY_ADDRESS)} (DHCP, DNS "gateway.${gateway.domain}", ping, echo, HTTP, MQTT on port 1883)`);
    } else if (lanSpec.kind === 'tap') {
      const tapAddr = str(values, 'tap-addr');
      // SPINET_TUN_DEVICE: the TUN clone device where it is not /dev/net/tun (a container's, or one
      // the user may open when /dev/net/tun is root's only).
      const tunDevice = process.env.SPINET_TUN_DEVICE;
      tap = await TapAttachment.open({ ifname: lanSpec.ifname, ...(tapAddr ? { address: tapAddr } : {}), ...(tunDevice ? { tunDevice } : {}) });
      tap.attachTo(lan);
      cleanups.push(() => tap!.close());
      progress(`LAN: TAP device ${lanSpec.ifname}${tapAddr ? ` (Linux side ${tapAddr})` : ''}`);
    }

    const trace = createTraceHook();
    const board = await connectBoard(checked.board, { clock, lan, mac, progress, trace });
    cleanups.push(() => board.close());
    if (options.promiscuous) {
      if (board.nic.setPromiscuous) {
        board.nic.setPromiscuous(true);
        progress('promiscuous: the chip\'s receive filter is off; frames for other hosts are logged (the stack still ignores them)');
      } else progress('promiscuous: a virtual NIC already gets every frame its switch port carries');
    }

    const { log, pcap } = checked;
    let nic: Nic = board.nic;
    let capture: CaptureNic | undefined;
    // The frame log goes to stderr beside the progress, or (spinet run) to stdout as the
    // command's output, so that --log json is pure JSON lines there; with --pcap - stdout is the
    // pcapng stream (spinet run --pcap - | wireshark -k -i -) and the log stays on stderr.
    const toStdout = pcap === '-';
    const logStream = options.logToStdout && !toStdout ? process.stdout : process.stderr;
    const writeLine = (line: string) => void logStream.write(line + '\n');
    const sinks = [
      ...(log !== 'none' || pcap ? createCaptureSinks({ log, writeLine, ...(pcap && !toStdout ? { pcapPath: pcap } : {}), ...(toStdout ? { pcapSink: stdoutSink() } : {}) }) : []),
      ...(options.sinks ?? []),
    ];
    if (sinks.length > 0) {
      const wrapper = new CaptureNic(board.nic, clock, sinks);
      cleanups.push(() => wrapper.closeSinks());
      nic = capture = wrapper;
      if (pcap) progress(`capture: every frame to ${toStdout ? 'stdout' : pcap} (pcapng)`);
    }

    const stack = new Stack({ clock, random, trace, ...(str(values, 'hostname') ? { hostname: str(values, 'hostname') } : {}) });
    const iface = stack.addInterface(nic);
    const tcp = new Tcp(stack.ip, clock, random, {}, stack.containment);
    stack.registerTransport(tcp);
    // Names resolve through spinet's resolver, and a truncated DNS reply is asked again over spinet's TCP.
    // (The lookup runs only once a connection is made, after `dns` below exists.)
    const net = createNet(tcp, { lookup: (hostname, options, callback) => resolverLookup(dns)(hostname, options, callback) });
    const dns = createStackResolver(stack, { net });
    await stack.start();
    cleanups.push(() => stack.stop());
    progress(`board: ${board.description}, MAC ${nic.mac ? [...nic.mac].map((b) => b.toString(16).padStart(2, '0')).join(':') : '?'}, link ${nic.linkUp ? 'up' : 'down'}`);

    if (!values.dhcp) {
      const config = checked.config!; // checkNodeOptions demands one without --dhcp
      iface.addAddress(config.address, config.prefixLength);
      if (config.gateway !== undefined) stack.routes.add({ destination: 0, prefixLength: 0, gateway: config.gateway, interfaceIndex: iface.index });
      stack.dnsServers = [...config.dns];
      progress(`address: ${config.text}${config.gateway !== undefined ? `, gateway ${formatIpv4(config.gateway)}` : ''}`);
    }
    let dhcp: DhcpClient | undefined;
    if (values.dhcp) {
      // Interactive: no RFC 2131 §4.4.1 random 1–10 s start delay (dhclient and systemd-networkd do not
      // wait either); the RFC 5227 probe of the offered address stays.
      const leaseFile = str(values, 'lease-file');
      let previousLease: RememberedLease | undefined;
      if (leaseFile) {
        const remembered = readLeaseFile(leaseFile, iface.mac, clock.epochMs());
        previousLease = remembered.lease;
        progress(`DHCP: lease file ${leaseFile}: ${remembered.reason}`);
      }
      const client = createStackDhcpClient(stack, iface.index, { startupDelayMs: { min: 0, max: 0 }, ...(previousLease ? { previousLease } : {}) });
      dhcp = client;
      if (leaseFile) {
        const remember = (l: DhcpLease): void => {
          try {
            writeLeaseFile(leaseFile, iface.mac, l);
          } catch (error) {
            progress(`DHCP: cannot write the lease file ${leaseFile}: ${(error as Error).message}`);
          }
        };
        client.on('bound', remember);
        client.on('renewed', remember);
      }
      const lease = await new Promise<DhcpLease>((resolve, reject) => {
        const timer = clock.schedule(60_000, () => reject(Object.assign(new Error('no DHCP lease within 60 s'), { code: 'ETIMEDOUT' })));
        client.on('waiting', (ms: number) => ms >= 500 && progress(`DHCP: waiting ${(ms / 1000).toFixed(1)} s before DISCOVER (RFC 2131 start delay)`));
        client.on('discover', (attempt: number) => progress(attempt === 1 ? 'DHCP: DISCOVER broadcast, waiting for offers…' : `DHCP: no offer yet, DISCOVER again (attempt ${attempt})`));
        client.on('offer', (address: number, server: number) => progress(`DHCP: ${formatIpv4(server)} offers ${formatIpv4(address)}; REQUEST sent…`));
        client.on('checking', (address: number) => progress(`DHCP: ACK; checking nobody else uses ${formatIpv4(address)} (RFC 5227 ARP probe, a few seconds)…`));
        client.on('conflict', (address: number) => progress(`DHCP: ${formatIpv4(address)} is already in use on the LAN — declined, asking again`));
        client.on('state', (to) => to === 'REBOOTING' && previousLease && progress(`DHCP: REQUEST for ${formatIpv4(previousLease.address)} (INIT-REBOOT), waiting for the server to confirm…`));
        client.on('nak', (message) => progress(`DHCP: the server refused${message ? ` (${message})` : ''} — starting over`));
        client.on('refused', (reason, address, server) => progress(`DHCP: ${server === undefined ? 'a server' : formatIpv4(server)} offers ${formatIpv4(address)}, which cannot be used (${reason}) — refused`));
        client.once('bound', (l) => {
          timer.cancel();
          resolve(l);
        });
        client.start();
      });
      // Ctrl-C: give the address back (RFC 2131 §4.4.6) before the link goes down — unless it is
      // remembered in a lease file for the next start (as dhclient keeps its lease on exit).
      cleanups.push(() => client.stop({ release: !leaseFile }));
      progress(
        `DHCP: bound ${formatIpv4(lease.address)}/${lease.prefixLength} from ${formatIpv4(lease.serverIdentifier)}, ` +
          `router ${lease.routers.map(formatIpv4).join(', ') || 'none'}, DNS ${lease.dnsServers.map(formatIpv4).join(', ') || 'none'}, lease ${lease.leaseTimeS} s`,
      );
    }

    const dgram = createDgram(stack.udp);
    const agent = new SpinetHttpAgent(net, { keepAlive: true });
    const httpsAgents: HttpsAgent[] = [];
    cleanups.push(() => [agent, ...httpsAgents].forEach((a) => a.destroy()));
    const httpsAgent = (options?: HttpsAgentOptions): HttpsAgent => {
      const made = new SpinetHttpsAgent(net, { keepAlive: true, ...options });
      httpsAgents.push(made);
      return made;
    };
    let io: SpinetIO | undefined;
    const gpio = board.gpio;
    cleanups.push(() => io?.close());
    const forwards = new Set<Forward>();
    cleanups.push(async () => void (await Promise.all([...forwards].map((f) => f.close()))));
    const forward = async (port: number, localPort = 0): Promise<Forward> => {
      const address = iface.addresses[0];
      if (!gateway || !address) throw Object.assign(new Error('forwarding needs the built-in LAN (lan: sim) and an address'), { code: 'ERR_NO_FORWARD' });
      const f = await forwardPort(gateway.net, localPort, formatIpv4(address.address), port);
      const tracked: Forward = { port: f.port, close: () => (forwards.delete(tracked), f.close()) };
      forwards.add(tracked);
      return tracked;
    };
    const stats = (): SpinetStats => ({ ...stack.tables(), counters: stack.counters(), transports: stack.transportCounters() });
    return {
      clock, stack, iface, nic, board, trace, lan, tcp, net, dgram, dns, agent, httpsAgent, stats, forward,
      ...(capture ? { capture } : {}),
      get io(): SpinetIO {
        if (!gpio) throw Object.assign(new Error(`this board has no pins for johnny-five (${board.description}): use board 'sim' or a real board`), { code: 'ERR_NO_GPIO' });
        io ??= new SpinetIO({ gpio, clock });
        return io;
      },
      ...(dhcp ? { dhcp } : {}), ...(gateway ? { gateway } : {}), ...(tap ? { tap } : {}), close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The pcapng stream to stdout (`--pcap -`); closing flushes it, stdout itself stays open. */
function stdoutSink(): ByteSink {
  return {
    write: (bytes) => void process.stdout.write(bytes),
    flush: () => new Promise<void>((resolve) => process.stdout.write('', () => resolve())),
  };
}

/** A 127.0.0.1 listener whose every connection is piped into a spinet connection to host:port. */
async function forwardPort(net: Net, localPort: number, host: string, port: number): Promise<Forward> {
  const open = new Set<NodeSocket>();
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
    server.once('error', reject);
    server.listen(localPort, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Resolve on the first SIGINT/SIGTERM (Ctrl-C), so a command can shut down cleanly — and keep the
 * process alive until then: signal listeners do not, and a virtual board on the built-in LAN may
 * have no timer or socket pending at all (the CLI exits through process.exit once a command returns).
 * `done`, when given, ends the wait too (a capture that reached its count): it resolves with 'done'.
 */
export function untilInterrupted(done?: Promise<unknown>): Promise<string> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const finish = (why: string) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      clearInterval(keepAlive);
      resolve(why);
    };
    const handler = (signal: NodeJS.Signals) => finish(signal);
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    void done?.then(() => finish('done'));
  });
}
