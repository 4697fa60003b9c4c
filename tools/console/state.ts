/**
 * What the operator console shows, gathered from a running node in one snapshot: the stack's
 * tables (interfaces, ARP cache, routes, sockets with TCP's internals), the DHCP lease and its
 * timers, counters per layer, the serial link to the board and the chip. Plain data (JSON); the
 * console pushes one every half second.
 */
import { formatIpv4 } from '../../src/wire/address.js';
import type { ArpEntryRow, InterfaceRow, RouteRow, SocketRow } from '../../src/stats/rows.js';
import type { LayerCountersSnapshot, NamedCounters } from '../../src/stats/counters.js';
import type { TcpConnectionInfo } from '../../src/tcp/connection.js';
import type { NicStats } from '../../src/link/nic.js';
import type { ChipStatus } from '../../src/drivers/status.js';
import type { BridgeLinkStatus, BridgeStats } from '../../hal/bridge/bridge-hal.js';
import type { SpinetNode } from '../node.js';

export interface DhcpView {
  readonly state: string;
  readonly lease?: {
    readonly address: string;
    readonly server: string;
    readonly routers: readonly string[];
    readonly dns: readonly string[];
    readonly leaseTimeS: number;
    /** Seconds until T1 (renew), T2 (rebind) and expiry; negative once passed. */
    readonly renewInS: number;
    readonly rebindInS: number;
    readonly expiresInS: number;
  };
}

export interface TcpSocketView {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly state: string;
  readonly info?: TcpConnectionInfo;
}

export interface LinkView {
  readonly stats: BridgeStats;
  readonly status: BridgeLinkStatus;
  /** The line's capacity each way: baud / 10 (8N1: ten bit times a byte). */
  readonly lineBytesPerSecond: number;
  /** Measured since the previous snapshot. */
  readonly toBoardBytesPerSecond: number;
  readonly fromBoardBytesPerSecond: number;
}

export interface ConsoleState {
  /** The node's clock (ms) and wall time. */
  readonly timeMs: number;
  readonly epochMs: number;
  readonly uptimeS: number;
  readonly hostname: string;
  readonly board: string;
  readonly interfaces: readonly InterfaceRow[];
  readonly nic: NicStats & { readonly rxBytesPerSecond: number; readonly txBytesPerSecond: number };
  readonly arp: readonly ArpEntryRow[];
  readonly routes: readonly RouteRow[];
  readonly dhcp?: DhcpView;
  readonly dnsServers: readonly string[];
  readonly sockets: readonly SocketRow[];
  readonly tcp: readonly TcpSocketView[];
  readonly counters: Readonly<Record<string, LayerCountersSnapshot>>;
  readonly tcpCounters?: NamedCounters;
  readonly link?: LinkView;
  readonly chip?: ChipStatus;
  /** Whether layers are reporting to the console's follow-a-packet view right now. */
  readonly tracing: boolean;
}

/** Snapshots of one node; rates are measured between consecutive calls. */
export class ConsoleStateSource {
  private readonly startedAt: number;
  private last: { timeMs: number; rxBytes: number; txBytes: number; toBoard: number; fromBoard: number } | undefined;

  constructor(private readonly node: SpinetNode) {
    this.startedAt = node.clock.now();
  }

  snapshot(): ConsoleState {
    const { node } = this;
    const now = node.clock.now();
    const tables = node.stack.tables();
    const nic = node.board.nic.stats();
    const link = node.board.link;
    const previous = this.last;
    const seconds = previous ? Math.max(0.001, (now - previous.timeMs) / 1000) : 1;
    const rate = (current: number, before: number | undefined) => (previous && before !== undefined ? Math.max(0, (current - before) / seconds) : 0);
    this.last = { timeMs: now, rxBytes: nic.rxBytes, txBytes: nic.txBytes, toBoard: link?.stats.bytesSent ?? 0, fromBoard: link?.stats.bytesReceived ?? 0 };
    const dhcp = node.dhcp;
    const lease = dhcp?.lease;
    const untilS = (afterS: number) => (lease ? (lease.startedAt + afterS * 1000 - now) / 1000 : 0);
    const status = link?.linkStatus();
    return {
      timeMs: now,
      epochMs: node.clock.epochMs(),
      uptimeS: (now - this.startedAt) / 1000,
      hostname: node.stack.hostname,
      board: node.board.description,
      interfaces: tables.interfaces,
      nic: { ...nic, drops: { ...nic.drops }, rxBytesPerSecond: rate(nic.rxBytes, previous?.rxBytes), txBytesPerSecond: rate(nic.txBytes, previous?.txBytes) },
      arp: tables.arp,
      routes: tables.routes,
      ...(dhcp
        ? {
            dhcp: {
              state: dhcp.state,
              ...(lease
                ? {
                    lease: {
                      address: `${formatIpv4(lease.address)}/${lease.prefixLength}`,
                      server: formatIpv4(lease.serverIdentifier),
                      routers: lease.routers.map(formatIpv4),
                      dns: lease.dnsServers.map(formatIpv4),
                      leaseTimeS: lease.leaseTimeS,
                      renewInS: untilS(lease.renewalTimeS),
                      rebindInS: untilS(lease.rebindingTimeS),
                      expiresInS: untilS(lease.leaseTimeS),
                    },
                  }
                : {}),
            },
          }
        : {}),
      dnsServers: node.stack.dnsServers.map(formatIpv4),
      sockets: tables.sockets,
      tcp: node.tcp.socketTable().map((r) => ({
        localAddress: r.localAddress,
        localPort: r.localPort,
        remoteAddress: r.remoteAddress,
        remotePort: r.remotePort,
        state: r.state,
        ...(r.info ? { info: r.info } : {}),
      })),
      counters: node.stack.counters(),
      ...(node.stack.transportCounters().tcp ? { tcpCounters: node.stack.transportCounters().tcp } : {}),
      ...(link && status
        ? {
            link: {
              stats: { ...link.stats },
              status,
              lineBytesPerSecond: status.baudRate / 10,
              toBoardBytesPerSecond: rate(link.stats.bytesSent, previous?.toBoard),
              fromBoardBytesPerSecond: rate(link.stats.bytesReceived, previous?.fromBoard),
            },
          }
        : {}),
      ...(node.board.chip ? { chip: node.board.chip.status() } : {}),
      tracing: node.trace.emit !== undefined,
    };
  }
}
