/**
 * spinet as a library: `import { openBoard } from 'spinet'`. One entry point above the layers
 * gives a running stack on a board, with Node-shaped APIs over it (net, dgram, dns, an http.Agent,
 * the johnny-five IO plugin). The command line opens its boards through the same function.
 *
 *   const node = await openBoard({ port: '/dev/ttyACM0', dhcp: true });   // a real board
 *   const node = await openBoard({ board: 'sim' });                        // the simulated Uno
 *   node.net.createServer((s) => s.end('hello\n')).listen(7);
 *   await node.close();
 */
import { openNode, type Progress, type SpinetNode, type Values } from './node.js';

export type { SpinetNode, SpinetStats, SpinetHttpAgent, SpinetHttpsAgent, Forward } from './node.js';
export type { Net, Socket, Server } from '../src/socket/net.js';
export type { Dgram, UdpSocket } from '../src/socket/dgram.js';
export type { DnsResolver, LookupAddress } from '../src/app/dns/resolver.js';
export type { SpinetIO } from '../hal/johnny-five/spinet-io.js';

export interface OpenBoardOptions {
  /**
   * What sits under the stack: 'serial' (a real board on `port`), 'sim' (the bridge sketch in an
   * AVR emulator with an emulated ENC28J60), 'mock' (the chip's driver over an emulated chip, fast),
   * 'virtual' (a NIC straight on the LAN). Default: 'serial' when `port` is given, else 'sim'.
   */
  board?: 'serial' | 'sim' | 'mock' | 'virtual';
  /** The Ethernet chip: 'enc28j60' (default) or 'w5500' (mock board only). */
  chip?: 'enc28j60' | 'w5500';
  /** Serial port of a real board, e.g. '/dev/ttyACM0'. */
  port?: string;
  /** Serial speed (default 1000000, the bridge sketch's). */
  baudRate?: number;
  /**
   * Where an emulated chip's cable plugs in: 'sim' (default: a built-in LAN with a gateway at
   * 192.0.2.1 serving DHCP, DNS, ping, echo, HTTP and MQTT) or 'tap:IFNAME' (a Linux TAP device).
   */
  lan?: string;
  /** With lan 'tap:IF': the Linux side's address, 'A/N' (creating the TAP needs root). */
  tapAddress?: string;
  /** Static address 'A/N' (default on the built-in LAN: 192.0.2.10/24). */
  ip?: string;
  gateway?: string;
  dns?: string[];
  /** Take address, gateway and DNS servers from DHCP. */
  dhcp?: boolean;
  /** With dhcp: remember the lease in this file and ask for it again next time. */
  leaseFile?: string;
  hostname?: string;
  /** MAC address, 'xx:xx:…' (default 02:5e:00:00:00:0a, locally administered). */
  mac?: string;
  /** Log every frame to stderr. */
  log?: 'none' | 'text' | 'json';
  /** Write every frame to this pcapng file. */
  pcap?: string;
  /** What the board is doing while it comes up (board opened, DHCP lease, …). */
  onProgress?: Progress;
}

/**
 * Bring a board up and the stack on it, resolved once the interface has its address. Bad options
 * reject with code ERR_USAGE (the message names the option as the command line spells it); a board
 * that cannot be opened rejects with Node's code (ENOENT, EACCES, ETIMEDOUT) and what to do.
 */
export function openBoard(options: OpenBoardOptions = {}): Promise<SpinetNode> {
  return openNode(boardValues({ ...fromEnvironment(options), ...options }), options.onProgress);
}

/**
 * What the environment says when the options do not: SPINET_PORT (a real board; it takes its
 * address by DHCP unless SPINET_IP gives one), SPINET_BOARD, SPINET_CHIP, SPINET_LAN,
 * SPINET_TAP_ADDR, SPINET_IP, SPINET_GATEWAY — so one program runs on the simulated board in CI and
 * on the real one at the desk.
 */
function fromEnvironment(options: OpenBoardOptions): OpenBoardOptions {
  const env = process.env;
  const chosen = options.board !== undefined || options.port !== undefined;
  const port = chosen ? undefined : env.SPINET_PORT || undefined;
  const board = chosen || port ? undefined : env.SPINET_BOARD || undefined;
  const ip = options.ip ?? (env.SPINET_IP || undefined);
  const real = (options.board ?? (options.port ?? port ? 'serial' : board)) === 'serial';
  return {
    ...(port ? { port } : {}),
    ...(board ? { board: board as OpenBoardOptions['board'] } : {}),
    ...(env.SPINET_CHIP ? { chip: env.SPINET_CHIP as OpenBoardOptions['chip'] } : {}),
    ...(env.SPINET_LAN ? { lan: env.SPINET_LAN } : {}),
    ...(env.SPINET_TAP_ADDR ? { tapAddress: env.SPINET_TAP_ADDR } : {}),
    ...(ip ? { ip } : {}),
    ...(env.SPINET_GATEWAY ? { gateway: env.SPINET_GATEWAY } : {}),
    // A real board on a real LAN has no address of its own to assume: ask DHCP.
    ...(real && !ip && options.dhcp === undefined ? { dhcp: true } : {}),
  };
}

/** The options as the command line's values: both go through one composition (tools/node.ts). */
function boardValues(options: OpenBoardOptions): Values {
  const values: Values = { board: options.board ?? (options.port !== undefined ? 'serial' : 'sim') };
  const strings: [keyof OpenBoardOptions, string][] = [
    ['chip', 'chip'], ['port', 'port'], ['lan', 'lan'], ['tapAddress', 'tap-addr'], ['ip', 'ip'], ['gateway', 'gateway'],
    ['leaseFile', 'lease-file'], ['hostname', 'hostname'], ['mac', 'mac'], ['log', 'log'], ['pcap', 'pcap'],
  ];
  for (const [key, name] of strings) if (options[key] !== undefined) values[name] = String(options[key]);
  if (options.baudRate !== undefined) values.baud = String(options.baudRate);
  if (options.dns !== undefined) values.dns = [...options.dns];
  if (options.dhcp) values.dhcp = true;
  return values;
}
