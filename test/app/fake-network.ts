import type { Clock } from '../../src/time/clock.js';
import { IPV4_BROADCAST, type Ipv4Address } from '../../src/wire/address.js';
import type {
  DatagramFactory,
  DatagramOpenOptions,
  DatagramPeer,
  DatagramSocket,
  InterfaceConfigSink,
  SocketError,
} from '../../src/app/transport.js';

/**
 * An in-memory IP subnet for application-protocol tests: hosts with one address each, UDP
 * sockets, limited broadcast, and a hook to lose, duplicate, delay or rewrite any datagram.
 * Delivery goes through the clock (1 ms by default), so nothing re-enters a sender.
 */
export interface Datagram {
  readonly from: DatagramPeer;
  readonly to: DatagramPeer;
  readonly data: Uint8Array;
  readonly at: number;
  readonly fromHost: string;
}

export type Verdict = 'deliver' | 'drop' | { readonly delayMs?: number; readonly copies?: number };

interface FakeSocket {
  host: FakeHost;
  port: number;
  address: Ipv4Address;
  broadcast: boolean;
  open: boolean;
  messageListeners: ((data: Uint8Array, from: DatagramPeer) => void)[];
  errorListeners: ((error: SocketError) => void)[];
}

export class FakeNetwork {
  readonly hosts = new Map<string, FakeHost>();
  readonly log: Datagram[] = [];
  latencyMs = 1;
  /** Answer datagrams to closed ports with ECONNREFUSED at the sender (ICMP port unreachable). */
  refuseClosedPorts = false;
  impair: (datagram: Datagram) => Verdict = () => 'deliver';

  constructor(readonly clock: Clock) {}

  host(name: string, address: Ipv4Address = 0): FakeHost {
    const host = new FakeHost(this, name, address);
    this.hosts.set(name, host);
    return host;
  }

  /** Put a datagram on the wire as if `fromHost` had sent it (spoofers, late duplicates). */
  inject(from: DatagramPeer, to: DatagramPeer, data: Uint8Array, fromHost = 'injector'): void {
    this.route({ from, to, data, at: this.clock.now(), fromHost }, undefined);
  }

  sentTo(port: number): Datagram[] {
    return this.log.filter((d) => d.to.port === port);
  }

  /** @internal */
  route(datagram: Datagram, sender: FakeSocket | undefined): void {
    this.log.push(datagram);
    const verdict = this.impair(datagram);
    if (verdict === 'drop') return;
    const delayMs = verdict === 'deliver' ? this.latencyMs : (verdict.delayMs ?? this.latencyMs);
    const copies = verdict === 'deliver' ? 1 : (verdict.copies ?? 1);
    for (let i = 0; i < copies; i++) this.clock.schedule(delayMs, () => this.deliver(datagram, sender));
  }

  private deliver(datagram: Datagram, sender: FakeSocket | undefined): void {
    const broadcast = datagram.to.address === IPV4_BROADCAST;
    let delivered = false;
    for (const host of this.hosts.values()) {
      if (host.name === datagram.fromHost) continue;
      if (!broadcast && (host.address === 0 || host.address !== datagram.to.address)) continue;
      for (const socket of host.sockets) {
        if (!socket.open || socket.port !== datagram.to.port) continue;
        if (socket.address !== 0 && socket.address !== datagram.to.address) continue;
        if (broadcast && !socket.broadcast && socket.address !== 0) continue;
        delivered = true;
        for (const listener of socket.messageListeners) listener(datagram.data.slice(), datagram.from);
      }
    }
    if (!delivered && !broadcast && this.refuseClosedPorts && sender?.open) {
      const error: SocketError = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', peer: datagram.to });
      for (const listener of sender.errorListeners) listener(error);
    }
  }
}

export class FakeHost implements DatagramFactory {
  readonly sockets = new Set<FakeSocket>();
  router: Ipv4Address | undefined;
  dnsServers: readonly Ipv4Address[] = [];
  prefixLength = 0;
  /** Every call on `config`, for assertions. */
  readonly configLog: string[] = [];
  private nextEphemeral = 40_000;

  constructor(
    readonly network: FakeNetwork,
    readonly name: string,
    public address: Ipv4Address,
  ) {}

  /** An InterfaceConfigSink that configures this host. */
  readonly config: InterfaceConfigSink = {
    setAddress: (address, prefixLength) => {
      this.address = address;
      this.prefixLength = prefixLength;
      this.configLog.push(`setAddress ${address >>> 0}/${prefixLength}`);
    },
    clearAddress: (address) => {
      if (this.address === address) this.address = 0;
      this.configLog.push(`clearAddress ${address >>> 0}`);
    },
    setRouter: (router) => {
      this.router = router;
      this.configLog.push(`setRouter ${router ?? 'none'}`);
    },
    setDnsServers: (servers) => {
      this.dnsServers = [...servers];
      this.configLog.push(`setDnsServers ${servers.join(',')}`);
    },
  };

  open(options: DatagramOpenOptions): DatagramSocket {
    const port = options.port ?? this.nextEphemeral++;
    for (const s of this.sockets) {
      if (s.open && s.port === port) throw Object.assign(new Error(`bind EADDRINUSE ${port}`), { code: 'EADDRINUSE' });
    }
    const socket: FakeSocket = {
      host: this,
      port,
      address: options.address ?? 0,
      broadcast: options.broadcast ?? false,
      open: true,
      messageListeners: [],
      errorListeners: [],
    };
    this.sockets.add(socket);
    const network = this.network;
    return {
      localPort: port,
      send: (data, toPort, toAddress) => {
        if (!socket.open) return;
        network.route({ from: { address: this.address, port }, to: { address: toAddress, port: toPort }, data: data.slice(), at: network.clock.now(), fromHost: this.name }, socket);
      },
      onMessage: (listener) => socket.messageListeners.push(listener),
      onError: (listener) => socket.errorListeners.push(listener),
      close: () => {
        socket.open = false;
        this.sockets.delete(socket);
      },
    };
  }

  get openPorts(): number[] {
    return [...this.sockets].map((s) => s.port);
  }
}
