import type { Clock } from '../../time/clock.js';
import { formatMac, IPV4_BROADCAST, parseMac, prefixMask, sameSubnet, toIpv4Address, type Ipv4Address } from '../../wire/address.js';
import type { DatagramFactory, DatagramPeer, DatagramSocket } from '../transport.js';
import { DHCP_DEFAULTS } from './options.js';
import { countByName, countDrop } from '../../stats/counters.js';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DHCP_CLIENT_PORT,
  DHCP_MESSAGE_TYPE_NAMES,
  DHCP_SERVER_PORT,
  DhcpMessageType,
  emitDhcpMessage,
  parseDhcpMessage,
  type DhcpMessage,
  type DhcpOptions,
} from './wire.js';

/**
 * A small DHCP server for a lab subnet (RFC 2131 §4.3): one pool, static reservations, offers
 * held briefly, leases with configurable times, DECLINE (address quarantined) and RELEASE.
 * It answers directly attached clients and relays (giaddr). Replies that RFC 2131 §4.1 would
 * unicast to a not-yet-configured client (no broadcast bit) are broadcast instead: a UDP socket
 * cannot fill the ARP cache for the client's hardware address, and broadcasting is always allowed.
 */

export interface DhcpReservation {
  readonly mac: string | Uint8Array;
  readonly address: string | Ipv4Address;
  readonly hostName?: string;
}

export interface DhcpServerOptions {
  readonly transport: DatagramFactory;
  readonly clock: Clock;
  /** Our address on the subnet: the server identifier (option 54). */
  readonly serverAddress: string | Ipv4Address;
  readonly prefixLength: number;
  readonly poolStart: string | Ipv4Address;
  readonly poolEnd: string | Ipv4Address;
  readonly router?: string | Ipv4Address;
  readonly dnsServers?: readonly (string | Ipv4Address)[];
  readonly domainName?: string;
  readonly leaseTimeS?: number;
  /** T1 and T2; omitted, clients use 0.5 and 0.875 of the lease (RFC 2131 §4.4.5). */
  readonly renewalTimeS?: number;
  readonly rebindingTimeS?: number;
  readonly reservations?: readonly DhcpReservation[];
  readonly offerHoldMs?: number;
  readonly declineHoldMs?: number;
  readonly interfaceIndex?: number;
  /**
   * The only server on its network (dnsmasq's `dhcp-authoritative`, ISC's `authoritative;`): a
   * client asking for a free address of ours that we have no record of — INIT-REBOOT or renewing
   * after our restart — is given it, instead of the silence RFC 2131 §4.3.2 asks of a server that
   * may be one of several. Off by default.
   */
  readonly authoritative?: boolean;
}

export type DhcpBindingState = 'offered' | 'bound' | 'released' | 'declined';

export interface DhcpServerLease {
  readonly address: Ipv4Address;
  readonly mac: string;
  readonly clientKey: string;
  readonly state: DhcpBindingState;
  /** Clock time the offer, lease or quarantine runs out. */
  readonly expiresAt: number;
  readonly hostName?: string;
}

export interface DhcpServerStats {
  received: Record<string, number>;
  sent: Record<string, number>;
  /** Requests not answered, by reason: parse reasons, 'pool-exhausted', 'not-for-us', 'no-record', … */
  drops: Record<string, number>;
}

interface Binding {
  address: Ipv4Address;
  clientKey: string | undefined;
  mac: string;
  state: DhcpBindingState;
  expiresAt: number;
  hostName?: string;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class DhcpServer {
  readonly stats: DhcpServerStats = { received: {}, sent: {}, drops: {} };
  private readonly serverAddress: Ipv4Address;
  private readonly poolStart: Ipv4Address;
  private readonly poolEnd: Ipv4Address;
  private readonly mask: Ipv4Address;
  private readonly byAddress = new Map<Ipv4Address, Binding>();
  /** Reserved address by MAC (lower-case colon form). */
  private readonly reservations = new Map<string, { address: Ipv4Address; hostName?: string }>();
  private readonly reservedAddresses = new Set<Ipv4Address>();
  private socket: DatagramSocket | undefined;

  constructor(private readonly options: DhcpServerOptions) {
    this.serverAddress = toIpv4Address(options.serverAddress);
    this.poolStart = toIpv4Address(options.poolStart);
    this.poolEnd = toIpv4Address(options.poolEnd);
    this.mask = prefixMask(options.prefixLength);
    if (this.poolStart > this.poolEnd || !this.inSubnet(this.poolStart) || !this.inSubnet(this.poolEnd)) {
      throw Object.assign(new RangeError('DHCP pool must be a range inside the server subnet'), { code: 'ERR_OUT_OF_RANGE' });
    }
    for (const r of options.reservations ?? []) {
      const mac = formatMac(typeof r.mac === 'string' ? parseMac(r.mac) : r.mac);
      const address = toIpv4Address(r.address);
      this.reservations.set(mac, { address, ...(r.hostName !== undefined && { hostName: r.hostName }) });
      this.reservedAddresses.add(address);
    }
  }

  start(): void {
    if (this.socket) return;
    this.socket = this.options.transport.open({ port: DHCP_SERVER_PORT, broadcast: true, interfaceIndex: this.options.interfaceIndex });
    this.socket.onMessage((data, from) => this.receive(data, from));
    this.socket.onError(() => countDrop(this.stats.drops, 'socket-error'));
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  /** Current bindings (offers, leases, released and quarantined addresses). */
  leases(): DhcpServerLease[] {
    return [...this.byAddress.values()].map((b) => ({
      address: b.address,
      mac: b.mac,
      clientKey: b.clientKey ?? '',
      state: b.state,
      expiresAt: b.expiresAt,
      ...(b.hostName !== undefined && { hostName: b.hostName }),
    }));
  }

  // -------------------------------------------------------------------------------------------

  private now(): number {
    return this.options.clock.now();
  }

  private inSubnet(address: Ipv4Address): boolean {
    return sameSubnet(address, this.serverAddress, this.options.prefixLength);
  }

  private inPool(address: Ipv4Address): boolean {
    return address >= this.poolStart && address <= this.poolEnd;
  }

  private live(b: Binding | undefined): boolean {
    return b !== undefined && b.state !== 'released' && b.expiresAt > this.now();
  }

  /** May `address` be given to `clientKey`/`mac`? */
  private availableTo(address: Ipv4Address, clientKey: string, mac: string): boolean {
    if (address === this.serverAddress || !this.inSubnet(address)) return false;
    const reserved = this.reservations.get(mac);
    if (reserved) return reserved.address === address;
    if (!this.inPool(address) || this.reservedAddresses.has(address)) return false;
    const b = this.byAddress.get(address);
    return !this.live(b) || (b!.clientKey === clientKey && b!.state !== 'declined');
  }

  private bindingOf(clientKey: string): Binding | undefined {
    for (const b of this.byAddress.values()) if (b.clientKey === clientKey) return b;
    return undefined;
  }

  private choose(clientKey: string, mac: string, requested: Ipv4Address | undefined): Ipv4Address | undefined {
    const reserved = this.reservations.get(mac);
    if (reserved) return reserved.address;
    const previous = this.bindingOf(clientKey);
    if (previous && this.availableTo(previous.address, clientKey, mac)) return previous.address;
    if (requested !== undefined && this.availableTo(requested, clientKey, mac)) return requested;
    // Never-used addresses first, then the one free the longest (RFC 2131 §4.3.1 preference order).
    let oldest: Binding | undefined;
    for (let a = this.poolStart; a <= this.poolEnd; a++) {
      if (!this.availableTo(a, clientKey, mac)) continue;
      const b = this.byAddress.get(a);
      if (!b) return a;
      if (!oldest || b.expiresAt < oldest.expiresAt) oldest = b;
    }
    return oldest?.address;
  }

  private setBinding(address: Ipv4Address, clientKey: string | undefined, mac: string, state: DhcpBindingState, lifetimeMs: number, hostName?: string): void {
    // One binding per client: moving to a new address frees the old one.
    if (clientKey !== undefined) {
      const old = this.bindingOf(clientKey);
      if (old && old.address !== address) this.byAddress.delete(old.address);
    }
    this.byAddress.set(address, { address, clientKey, mac, state, expiresAt: this.now() + lifetimeMs, ...(hostName !== undefined && { hostName }) });
  }

  private receive(data: Uint8Array, from: DatagramPeer): void {
    const parsed = parseDhcpMessage(data);
    if (!parsed.ok) return countDrop(this.stats.drops, parsed.reason);
    const m = parsed.message;
    if (m.op !== BOOTREQUEST) return countDrop(this.stats.drops, 'not-request');
    if (m.hlen === 0) return countDrop(this.stats.drops, 'no-chaddr');
    const type = m.options.messageType!;
    countByName(this.stats.received, DHCP_MESSAGE_TYPE_NAMES[type]!);
    // RFC 2131 §4.2: the client identifier, else chaddr, names the client.
    const clientKey = m.options.clientIdentifier ? `id:${hex(m.options.clientIdentifier)}` : `hw:${m.htype}:${hex(m.chaddr)}`;
    const mac = m.chaddr.length === 6 ? formatMac(m.chaddr) : hex(m.chaddr);
    switch (type) {
      case DhcpMessageType.DISCOVER:
        return this.discover(m, clientKey, mac);
      case DhcpMessageType.REQUEST:
        return this.request(m, clientKey, mac);
      case DhcpMessageType.DECLINE:
        return this.declined(m, clientKey, mac);
      case DhcpMessageType.RELEASE:
        return this.released(m, clientKey);
      case DhcpMessageType.INFORM:
        return this.inform(m, from);
      default:
        return countDrop(this.stats.drops, 'not-client-message');
    }
  }

  private leaseTimeFor(m: DhcpMessage): number {
    const configured = this.options.leaseTimeS ?? DHCP_DEFAULTS.serverLeaseTimeS;
    const asked = m.options.leaseTime;
    return asked !== undefined && asked > 0 && asked < configured ? asked : configured;
  }

  private discover(m: DhcpMessage, clientKey: string, mac: string): void {
    const address = this.choose(clientKey, mac, m.options.requestedAddress);
    if (address === undefined) return countDrop(this.stats.drops, 'pool-exhausted');
    const existing = this.byAddress.get(address);
    // A client that already holds this lease keeps it while it re-discovers.
    if (!(existing && existing.clientKey === clientKey && existing.state === 'bound' && this.live(existing))) {
      this.setBinding(address, clientKey, mac, 'offered', this.options.offerHoldMs ?? DHCP_DEFAULTS.serverOfferHoldMs, m.options.hostName);
    }
    this.reply(m, DhcpMessageType.OFFER, address, this.leaseOptions(m, mac));
  }

  private request(m: DhcpMessage, clientKey: string, mac: string): void {
    const serverId = m.options.serverIdentifier;
    if (serverId !== undefined) {
      // SELECTING (RFC 2131 §4.3.2).
      if (serverId !== this.serverAddress) {
        // The client took another server's offer: ours is free again.
        const b = this.bindingOf(clientKey);
        if (b && b.state === 'offered') this.byAddress.delete(b.address);
        return countDrop(this.stats.drops, 'not-for-us');
      }
      const requested = m.options.requestedAddress ?? m.ciaddr;
      if (requested !== 0 && this.availableTo(requested, clientKey, mac)) return this.commit(m, clientKey, mac, requested);
      return this.nak(m, 'requested address not available');
    }
    if (m.ciaddr === 0) {
      // INIT-REBOOT: the client checks a remembered address.
      const requested = m.options.requestedAddress;
      if (requested === undefined) return countDrop(this.stats.drops, 'no-requested-address');
      if (!this.inSubnet(requested)) return this.nak(m, 'wrong network');
      const b = this.byAddress.get(requested);
      const reserved = this.reservations.get(mac);
      if ((b && b.clientKey === clientKey && b.state !== 'declined') || reserved?.address === requested) {
        return this.commit(m, clientKey, mac, requested);
      }
      if (!this.availableTo(requested, clientKey, mac)) return this.nak(m, 'address not yours');
      if (this.options.authoritative && this.inPool(requested)) return this.commit(m, clientKey, mac, requested);
      // RFC 2131 §4.3.2: no record of this client → remain silent.
      return countDrop(this.stats.drops, 'no-record');
    }
    // RENEWING / REBINDING: ciaddr holds the lease being extended.
    const b = this.byAddress.get(m.ciaddr);
    if (b && b.clientKey === clientKey && (b.state === 'bound' || b.state === 'offered' || b.state === 'released')) return this.commit(m, clientKey, mac, m.ciaddr);
    if (!this.inSubnet(m.ciaddr) || !this.availableTo(m.ciaddr, clientKey, mac)) return this.nak(m, 'lease not renewable');
    if (this.options.authoritative && this.inPool(m.ciaddr)) return this.commit(m, clientKey, mac, m.ciaddr);
    return countDrop(this.stats.drops, 'no-record');
  }

  private commit(m: DhcpMessage, clientKey: string, mac: string, address: Ipv4Address): void {
    const leaseTimeS = this.leaseTimeFor(m);
    const hostName = m.options.hostName ?? this.reservations.get(mac)?.hostName;
    this.setBinding(address, clientKey, mac, 'bound', leaseTimeS === 0xffffffff ? Number.MAX_SAFE_INTEGER : leaseTimeS * 1000, hostName);
    this.reply(m, DhcpMessageType.ACK, address, this.leaseOptions(m, mac));
  }

  private declined(m: DhcpMessage, clientKey: string, mac: string): void {
    if (m.options.serverIdentifier !== undefined && m.options.serverIdentifier !== this.serverAddress) return countDrop(this.stats.drops, 'not-for-us');
    const address = m.options.requestedAddress;
    if (address === undefined || !this.inSubnet(address)) return countDrop(this.stats.drops, 'bad-decline');
    const b = this.bindingOf(clientKey);
    if (b) this.byAddress.delete(b.address);
    // RFC 2131 §4.3.3: mark the address as not available (someone else uses it).
    this.byAddress.set(address, { address, clientKey: undefined, mac, state: 'declined', expiresAt: this.now() + (this.options.declineHoldMs ?? DHCP_DEFAULTS.serverDeclineHoldMs) });
  }

  private released(m: DhcpMessage, clientKey: string): void {
    const b = this.byAddress.get(m.ciaddr);
    if (!b || b.clientKey !== clientKey) return countDrop(this.stats.drops, 'no-record');
    // RFC 2131 §4.3.4: free, but remembered so the client gets the same address next time.
    b.state = 'released';
    b.expiresAt = this.now();
  }

  private inform(m: DhcpMessage, from: DatagramPeer): void {
    // RFC 2131 §4.3.5: configuration only — no lease time, no yiaddr, unicast to ciaddr.
    const { leaseTime: _l, renewalTime: _t1, rebindingTime: _t2, ...rest } = this.leaseOptions(m, '');
    const to = m.ciaddr !== 0 ? m.ciaddr : from.address;
    this.send(m, DhcpMessageType.ACK, 0, rest, to, DHCP_CLIENT_PORT);
  }

  private leaseOptions(m: DhcpMessage, mac: string): DhcpOptions {
    const o = this.options;
    const leaseTime = this.leaseTimeFor(m);
    const hostName = this.reservations.get(mac)?.hostName;
    return {
      leaseTime,
      ...(o.renewalTimeS !== undefined && { renewalTime: o.renewalTimeS }),
      ...(o.rebindingTimeS !== undefined && { rebindingTime: o.rebindingTimeS }),
      subnetMask: this.mask,
      ...(o.router !== undefined && { routers: [toIpv4Address(o.router)] }),
      ...(o.dnsServers && o.dnsServers.length > 0 && { dnsServers: o.dnsServers.map((server) => toIpv4Address(server)) }),
      ...(o.domainName !== undefined && { domainName: o.domainName }),
      ...(hostName !== undefined && { hostName }),
    };
  }

  private nak(m: DhcpMessage, why: string): void {
    // RFC 2131 Table 3: a NAK carries only the server identifier and a message; RFC 2131 §4.3.2:
    // broadcast it when there is no relay.
    const to = m.giaddr !== 0 ? m.giaddr : IPV4_BROADCAST;
    this.send(m, DhcpMessageType.NAK, 0, { message: why }, to, m.giaddr !== 0 ? DHCP_SERVER_PORT : DHCP_CLIENT_PORT, true);
  }

  private reply(m: DhcpMessage, type: number, yiaddr: Ipv4Address, options: DhcpOptions): void {
    // RFC 2131 §4.1: relay → giaddr:67; ciaddr set → unicast to it; otherwise broadcast (see top).
    if (m.giaddr !== 0) return this.send(m, type, yiaddr, options, m.giaddr, DHCP_SERVER_PORT);
    if (m.ciaddr !== 0) return this.send(m, type, yiaddr, options, m.ciaddr, DHCP_CLIENT_PORT);
    this.send(m, type, yiaddr, options, IPV4_BROADCAST, DHCP_CLIENT_PORT);
  }

  private send(m: DhcpMessage, type: number, yiaddr: Ipv4Address, options: DhcpOptions, to: Ipv4Address, port: number, nak = false): void {
    const bytes = emitDhcpMessage({
      op: BOOTREPLY,
      htype: m.htype,
      xid: m.xid,
      chaddr: m.chaddr,
      broadcast: m.broadcast || nak,
      ciaddr: nak ? 0 : m.ciaddr,
      yiaddr,
      giaddr: m.giaddr,
      options: { messageType: type, serverIdentifier: this.serverAddress, ...options },
    });
    countByName(this.stats.sent, DHCP_MESSAGE_TYPE_NAMES[type]!);
    this.socket?.send(bytes, port, to);
  }

}
