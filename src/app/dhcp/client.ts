import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../../time/clock.js';
import { randomBelow, randomUnit, type Random } from '../../time/random.js';
import { IPV4_BROADCAST, macEquals, type Ipv4Address } from '../../wire/address.js';
import type { ArpProbe, DatagramFactory, DatagramPeer, DatagramSocket, InterfaceConfigSink, NeighbourWait } from '../transport.js';
import { DHCP_DEFAULTS } from './options.js';
import { countByName, countDrop } from '../../stats/counters.js';
import { isUsableUnicast, leaseMask, leaseRefusal, type LeaseRefusal } from './lease-check.js';
import {
  BOOTREPLY,
  BOOTREQUEST,
  DHCP_CLIENT_PORT,
  DHCP_MESSAGE_TYPE_NAMES,
  DHCP_SERVER_PORT,
  DhcpMessageType,
  defaultClientIdentifier,
  emitDhcpMessage,
  INFINITE_LEASE,
  maskToPrefixLength,
  parseDhcpMessage,
  type DhcpMessage,
  type DhcpOptions,
} from './wire.js';

/**
 * DHCP client (RFC 2131 §4.4, Figure 5), one per interface, on the injected clock.
 *
 *   INIT ─DISCOVER→ SELECTING ─OFFER/REQUEST→ REQUESTING ─ACK→ CHECKING ─probe free→ BOUND
 *   BOUND ─T1→ RENEWING ─T2→ REBINDING ─expiry→ INIT;  a remembered lease starts at INIT-REBOOT
 *   ─REQUEST→ REBOOTING ─ACK→ CHECKING.
 *
 * CHECKING is RFC 2131 §4.4.1's "client SHOULD probe the newly received address" made a state
 * (lwIP's DHCP_STATE_CHECKING): an RFC 5227 ARP probe, DHCPDECLINE on conflict.
 *
 * Transaction ids (RFC 2131 §4.4.1 Table 5): one random xid per exchange, kept across its
 * retransmissions. The DHCPREQUEST that answers an offer carries the DHCPOFFER's xid — which is
 * the DHCPDISCOVER's, so DISCOVER, its retransmissions and the REQUEST share one xid. Every other
 * exchange (INIT-REBOOT, a RENEWING period, a REBINDING period, DECLINE, RELEASE) draws a new one.
 */

export type DhcpClientState =
  | 'STOPPED'
  | 'INIT'
  | 'SELECTING'
  | 'REQUESTING'
  | 'CHECKING'
  | 'BOUND'
  | 'RENEWING'
  | 'REBINDING'
  | 'INIT-REBOOT'
  | 'REBOOTING';

export interface DhcpLease {
  readonly address: Ipv4Address;
  readonly subnetMask: Ipv4Address;
  readonly prefixLength: number;
  readonly routers: readonly Ipv4Address[];
  readonly dnsServers: readonly Ipv4Address[];
  readonly domainName?: string;
  readonly serverIdentifier: Ipv4Address;
  /** Seconds; INFINITE_LEASE (0xffffffff) never expires. */
  readonly leaseTimeS: number;
  readonly renewalTimeS: number;
  readonly rebindingTimeS: number;
  /** Clock time the lease counts from: when the DHCPREQUEST was first sent (RFC 2131 §4.4.1). */
  readonly startedAt: number;
  /** The same instant in Unix ms, for persisting the lease across restarts. */
  readonly startedAtEpochMs: number;
}

/** What INIT-REBOOT needs from a lease remembered across a restart. */
export interface RememberedLease {
  readonly address: Ipv4Address;
  /**
   * When the lease runs out, in Unix ms (`startedAtEpochMs + leaseTimeS × 1000`). A lease already
   * past it is not asked for again: the client starts from INIT, as with no remembered lease.
   */
  readonly expiresAtEpochMs?: number;
}

/** What to remember of a lease for INIT-REBOOT after a restart (e.g. in a lease file). */
export function rememberLease(lease: DhcpLease): RememberedLease {
  return {
    address: lease.address,
    ...(lease.leaseTimeS === INFINITE_LEASE ? {} : { expiresAtEpochMs: lease.startedAtEpochMs + lease.leaseTimeS * 1000 }),
  };
}

export interface DhcpClientOptions {
  readonly transport: DatagramFactory;
  readonly clock: Clock;
  readonly random: Random;
  /** Our hardware address (chaddr). */
  readonly mac: Uint8Array;
  readonly config: InterfaceConfigSink;
  /** RFC 5227 probe; without one the address is used unprobed. */
  readonly arpProbe?: ArpProbe;
  /** Lets stop() wait until the DHCPRELEASE has left; without one stop() completes at once. */
  readonly neighbourWait?: NeighbourWait;
  readonly interfaceIndex?: number;
  /** Option 12 (RFC 2132 §3.14); dnsmasq registers it in its DNS. */
  readonly hostName?: string;
  /** Option 61; defaults to hardware type 1 + MAC (RFC 2132 §9.14). */
  readonly clientIdentifier?: Uint8Array;
  /** A lease from a previous run: start in INIT-REBOOT and ask for it again (RFC 2131 §3.2). */
  readonly previousLease?: RememberedLease;
  readonly startupDelayMs?: { readonly min: number; readonly max: number };
  readonly requestBroadcast?: boolean;
  readonly parameterRequestList?: readonly number[];
}

export interface DhcpClientStats {
  sent: Record<string, number>;
  received: Record<string, number>;
  /** Datagrams ignored, by reason: parse reasons, 'wrong-xid', 'wrong-chaddr', 'wrong-server', 'unexpected-DHCPACK', … */
  drops: Record<string, number>;
}

/**
 * Events, in the order a first lease produces them — enough for a CLI to show progress:
 *   waiting (the RFC 2131 §4.4.1 start delay) → discover (each DHCPDISCOVER, 1 = first) →
 *   offer (the offer taken; DHCPREQUEST sent) → checking (DHCPACK received, RFC 5227 ARP probe
 *   running) → bound, or conflict (DHCPDECLINE sent) → waiting → discover …
 */
export interface DhcpClientEvents {
  state: [to: DhcpClientState, from: DhcpClientState];
  /** In INIT, before the first DHCPDISCOVER: the random start delay, or the wait after a DECLINE or NAK. */
  waiting: [delayMs: number];
  /** A DHCPDISCOVER went out; `attempt` counts retransmissions from 1. */
  discover: [attempt: number];
  /** The offer taken (the first one, RFC 2131 §4.4.1); a DHCPREQUEST for it went out. */
  offer: [address: Ipv4Address, server: Ipv4Address];
  /** DHCPACK received; the RFC 5227 probe for the address has started (takes PROBE_WAIT + probes + ANNOUNCE_WAIT). */
  checking: [address: Ipv4Address];
  bound: [lease: DhcpLease];
  renewed: [lease: DhcpLease];
  expired: [lease: DhcpLease];
  nak: [message: string | undefined, server: Ipv4Address | undefined];
  conflict: [address: Ipv4Address];
  /** An OFFER or ACK whose lease cannot be used (lease-check.ts): ignored, or declined and backed off from. */
  refused: [reason: LeaseRefusal, address: Ipv4Address, server: Ipv4Address | undefined];
  released: [lease: DhcpLease];
}

export class DhcpClient extends EventEmitter<DhcpClientEvents> {
  readonly stats: DhcpClientStats = { sent: {}, received: {}, drops: {} };
  private currentState: DhcpClientState = 'STOPPED';
  private currentLease: DhcpLease | undefined;
  private socket: DatagramSocket | undefined;
  private xid = 0;
  /** Clock time the current exchange began (for 'secs'). */
  private exchangeStartedAt = 0;
  /** Clock time the current exchange's first DHCPREQUEST went out (lease start). */
  private requestSentAt: number | undefined;
  private transmissions = 0;
  /** 'secs' of the last DHCPDISCOVER, repeated in the DHCPREQUEST that follows it. */
  private discoverSecs = 0;
  private offer: DhcpMessage | undefined;
  private retransmitTimer: TimerHandle | undefined;
  private readonly leaseTimers: TimerHandle[] = [];
  private readonly clientIdentifier: Uint8Array;
  /** NAKs and refused leases since the last bind: what the back-off before starting over grows with. */
  private failures = 0;

  constructor(private readonly options: DhcpClientOptions) {
    super();
    this.clientIdentifier = options.clientIdentifier ?? defaultClientIdentifier(options.mac);
  }

  get state(): DhcpClientState {
    return this.currentState;
  }

  /** The lease in force (BOUND, RENEWING, REBINDING), else undefined. */
  get lease(): DhcpLease | undefined {
    return this.currentLease;
  }

  start(): void {
    if (this.currentState !== 'STOPPED') return;
    this.socket = this.options.transport.open({ port: DHCP_CLIENT_PORT, broadcast: true, interfaceIndex: this.options.interfaceIndex });
    this.socket.onMessage((data, from) => this.receive(data, from));
    this.socket.onError(() => countDrop(this.stats.drops, 'socket-error'));
    const previous = this.options.previousLease;
    const expiresAt = previous?.expiresAtEpochMs;
    if (previous && (expiresAt === undefined || expiresAt > this.options.clock.epochMs())) this.enterInitReboot(previous.address);
    else {
      const { min, max } = this.options.startupDelayMs ?? DHCP_DEFAULTS.startupDelayMs;
      this.enterInit(min + randomBelow(this.options.random, Math.max(0, max - min) + 1));
    }
  }

  /**
   * Stop the client. With `release` (the default) a bound lease is given back with DHCPRELEASE
   * (RFC 2131 §4.4.6) and removed from the interface; without it the address stays configured.
   *
   * The RELEASE is unicast and may wait for ARP; the address stays configured until it has left
   * (`neighbourWait`, then `releaseLingerMs`) so the ARP reply still reaches us. The promise
   * settles then: await it before taking the link down.
   */
  stop(options: { release?: boolean } = {}): Promise<void> {
    if (this.currentState === 'STOPPED') return Promise.resolve();
    const lease = this.currentLease;
    const release = lease !== undefined && (options.release ?? true);
    if (release) {
      this.send(
        DhcpMessageType.RELEASE,
        { serverIdentifier: lease.serverIdentifier },
        { xid: this.options.random.u32(), ciaddr: lease.address, to: lease.serverIdentifier, secs: 0 },
      );
    }
    this.cancelTimers();
    this.socket?.close();
    this.socket = undefined;
    this.offer = undefined;
    this.setState('STOPPED');
    if (!release) return Promise.resolve();
    const released = (): void => {
      // Unless start() has begun again (and unconfigured it itself) meanwhile.
      if (this.currentLease === lease) this.unconfigure(lease);
      this.emit('released', lease);
    };
    const { neighbourWait, clock } = this.options;
    if (!neighbourWait) {
      released();
      return Promise.resolve();
    }
    return neighbourWait(lease.serverIdentifier, DHCP_DEFAULTS.releaseNeighbourWaitMs)
      .catch(() => false)
      .then(() => new Promise<void>((resolve) => clock.schedule(DHCP_DEFAULTS.releaseLingerMs, resolve)))
      .then(released);
  }

  // -------------------------------------------------------------------------------------------
  // States

  private setState(to: DhcpClientState): void {
    const from = this.currentState;
    if (from === to) return;
    this.currentState = to;
    this.emit('state', to, from);
  }

  private newExchange(): void {
    this.xid = this.options.random.u32();
    this.exchangeStartedAt = this.options.clock.now();
    this.requestSentAt = undefined;
    this.transmissions = 0;
  }

  private enterInit(delayMs: number): void {
    this.cancelTimers();
    if (this.currentLease) this.unconfigure(this.currentLease);
    this.offer = undefined;
    this.setState('INIT');
    this.emit('waiting', delayMs);
    this.retransmitTimer = this.options.clock.schedule(delayMs, () => {
      this.newExchange();
      this.setState('SELECTING');
      this.sendDiscover();
    });
  }

  private sendDiscover(): void {
    this.discoverSecs = this.secsNow();
    this.scheduleRetransmit(() => this.sendDiscover());
    this.emit('discover', this.transmissions + 1);
    this.send(DhcpMessageType.DISCOVER, {}, { secs: this.discoverSecs });
  }

  private enterRequesting(offer: DhcpMessage): void {
    this.offer = offer;
    this.transmissions = 0;
    this.setState('REQUESTING');
    this.emit('offer', offer.yiaddr, offer.options.serverIdentifier!);
    this.sendSelectingRequest();
  }

  private sendSelectingRequest(): void {
    const offer = this.offer!;
    if (this.transmissions >= DHCP_DEFAULTS.requestTransmissions) return this.enterInit(0);
    // RFC 2131 §4.3.2 / Table 5: server identifier and requested address from the offer, ciaddr 0;
    // §4.4.1: the same 'secs' as the DHCPDISCOVER.
    this.scheduleRetransmit(() => this.sendSelectingRequest());
    this.send(DhcpMessageType.REQUEST, { requestedAddress: offer.yiaddr, serverIdentifier: offer.options.serverIdentifier }, { secs: this.discoverSecs });
  }

  private enterInitReboot(address: Ipv4Address): void {
    this.cancelTimers();
    this.setState('INIT-REBOOT');
    this.newExchange();
    this.offer = undefined;
    this.setState('REBOOTING');
    this.sendRebootRequest(address);
  }

  private sendRebootRequest(address: Ipv4Address): void {
    // RFC 2131 §3.2 step 3: no acknowledgement after retransmitting → start over from INIT.
    if (this.transmissions >= DHCP_DEFAULTS.rebootTransmissions) return this.enterInit(0);
    // RFC 2131 §4.3.2 INIT-REBOOT: requested address set, no server identifier, ciaddr 0.
    this.scheduleRetransmit(() => this.sendRebootRequest(address));
    this.send(DhcpMessageType.REQUEST, { requestedAddress: address });
  }

  private enterChecking(ack: DhcpMessage): void {
    this.cancelRetransmit();
    this.setState('CHECKING');
    const exchange = this.xid;
    const probe = this.options.arpProbe ? this.options.arpProbe(ack.yiaddr) : Promise.resolve<'free'>('free');
    if (this.options.arpProbe) this.emit('checking', ack.yiaddr);
    void probe.then(
      (verdict) => {
        if (this.currentState !== 'CHECKING' || this.xid !== exchange) return;
        if (verdict === 'free') this.bind(ack);
        else this.decline(ack, 'address in use (RFC 5227 probe)');
      },
      () => {
        if (this.currentState === 'CHECKING' && this.xid === exchange) this.bind(ack);
      },
    );
  }

  private decline(ack: DhcpMessage, why: string): void {
    countDrop(this.stats.drops, 'declined-conflict');
    this.sendDecline(ack, why);
    this.emit('conflict', ack.yiaddr);
    this.enterInit(DHCP_DEFAULTS.declineRestartDelayMs);
  }

  /** RFC 2131 §4.4.1 / Table 5: DECLINE carries the address and the server, ciaddr 0, its own xid. */
  private sendDecline(ack: DhcpMessage, why: string): void {
    this.send(
      DhcpMessageType.DECLINE,
      { requestedAddress: ack.yiaddr, serverIdentifier: ack.options.serverIdentifier, message: why },
      { xid: this.options.random.u32(), secs: 0, broadcast: false },
    );
  }

  /**
   * An ACK whose lease cannot be used (lease-check.ts). While a lease is in force (RENEWING,
   * REBINDING) it is ignored: the lease runs on and the client asks again. Otherwise an address
   * no host may hold is declined, so the server takes it out of its pool (RFC 2131 §4.3.3), and
   * the client starts over after a back-off that doubles with every refusal since the last bind.
   */
  private refuseAck(ack: DhcpMessage, reason: LeaseRefusal): void {
    countDrop(this.stats.drops, `refused-${reason}`);
    this.emit('refused', reason, ack.yiaddr, ack.options.serverIdentifier);
    if (this.currentState === 'RENEWING' || this.currentState === 'REBINDING') return;
    if (reason.startsWith('address-') || reason === 'unusable-address') this.sendDecline(ack, `unusable lease: ${reason}`);
    this.failures++;
    const backoff = DHCP_DEFAULTS.declineRestartDelayMs * 2 ** Math.min(this.failures - 1, 16);
    this.enterInit(Math.min(backoff, DHCP_DEFAULTS.refusedLeaseBackoffMaxMs));
  }

  private bind(ack: DhcpMessage): void {
    const previous = this.currentLease;
    const lease = this.leaseFrom(ack);
    this.cancelTimers();
    if (previous && previous.address !== lease.address) this.unconfigure(previous);
    this.currentLease = lease;
    this.failures = 0;
    const { config } = this.options;
    config.setAddress(lease.address, lease.prefixLength);
    config.setRouter(lease.routers[0]);
    config.setDnsServers(lease.dnsServers);
    this.scheduleLeaseTimers(lease);
    const renewed = previous !== undefined && (this.currentState === 'RENEWING' || this.currentState === 'REBINDING');
    this.setState('BOUND');
    this.emit(renewed ? 'renewed' : 'bound', lease);
  }

  private scheduleLeaseTimers(lease: DhcpLease): void {
    if (lease.leaseTimeS === INFINITE_LEASE) return;
    const { clock } = this.options;
    const at = (seconds: number): number => lease.startedAt + seconds * 1000 - clock.now();
    this.leaseTimers.push(
      clock.schedule(at(lease.renewalTimeS), () => this.enterRenewing()),
      clock.schedule(at(lease.rebindingTimeS), () => this.enterRebinding()),
      clock.schedule(at(lease.leaseTimeS), () => this.expire()),
    );
  }

  private enterRenewing(): void {
    if (this.currentState !== 'BOUND') return;
    this.newExchange();
    this.setState('RENEWING');
    this.sendRenewRequest();
  }

  private enterRebinding(): void {
    if (this.currentState !== 'BOUND' && this.currentState !== 'RENEWING') return;
    this.cancelRetransmit();
    this.newExchange();
    this.setState('REBINDING');
    this.sendRenewRequest();
  }

  /** RENEWING: unicast to the leasing server; REBINDING: broadcast to any. ciaddr set, no 50/54 (RFC 2131 §4.3.2). */
  private sendRenewRequest(): void {
    const lease = this.currentLease!;
    const renewing = this.currentState === 'RENEWING';
    // RFC 2131 §4.4.5: half the time left until T2 (RENEWING) or expiry (REBINDING), at least 60 s.
    // Scheduled before the send, for the reason scheduleRetransmit gives.
    const { clock } = this.options;
    const deadline = lease.startedAt + (renewing ? lease.rebindingTimeS : lease.leaseTimeS) * 1000;
    const remaining = deadline - clock.now();
    const wait = Math.max(remaining / 2, DHCP_DEFAULTS.renewRetransmitMinMs);
    this.cancelRetransmit();
    if (wait < remaining) this.retransmitTimer = clock.schedule(wait, () => this.sendRenewRequest());
    this.send(DhcpMessageType.REQUEST, {}, { ciaddr: lease.address, broadcast: false, to: renewing ? lease.serverIdentifier : IPV4_BROADCAST });
  }

  private expire(): void {
    const lease = this.currentLease;
    if (!lease) return;
    this.emit('expired', lease);
    this.enterInit(0);
  }

  private unconfigure(lease: DhcpLease): void {
    const { config } = this.options;
    config.clearAddress(lease.address);
    config.setRouter(undefined);
    config.setDnsServers([]);
    this.currentLease = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Receiving

  private receive(data: Uint8Array, _from: DatagramPeer): void {
    const parsed = parseDhcpMessage(data);
    if (!parsed.ok) return countDrop(this.stats.drops, parsed.reason);
    const m = parsed.message;
    if (m.op !== BOOTREPLY) return countDrop(this.stats.drops, 'not-reply');
    if (m.xid !== this.xid) return countDrop(this.stats.drops, 'wrong-xid');
    if (m.hlen !== this.options.mac.length || !macEquals(m.chaddr, 0, this.options.mac)) return countDrop(this.stats.drops, 'wrong-chaddr');
    const type = m.options.messageType!;
    const name = DHCP_MESSAGE_TYPE_NAMES[type]!;
    const unexpected = (): void => countDrop(this.stats.drops, `unexpected-${name}`);
    switch (this.currentState) {
      case 'SELECTING':
        if (type !== DhcpMessageType.OFFER) return unexpected();
        // RFC 2131 §4.3.1: an offer names the server and an address.
        if (m.yiaddr === 0 || m.options.serverIdentifier === undefined) return countDrop(this.stats.drops, 'bad-offer');
        {
          // An unusable offer is ignored: another server may offer better (RFC 2131 §4.4.1).
          const refusal = leaseRefusal(m);
          if (refusal !== undefined) {
            this.emit('refused', refusal, m.yiaddr, m.options.serverIdentifier);
            return countDrop(this.stats.drops, `refused-${refusal}`);
          }
        }
        countByName(this.stats.received, name);
        return this.enterRequesting(m);
      case 'REQUESTING':
        if (type !== DhcpMessageType.ACK && type !== DhcpMessageType.NAK) return unexpected();
        // Only the server we chose answers for our REQUEST (RFC 2131 §4.3.2).
        if (m.options.serverIdentifier !== this.offer!.options.serverIdentifier) return countDrop(this.stats.drops, 'wrong-server');
        return this.acknowledged(m, name);
      case 'REBOOTING':
      case 'REBINDING':
        if (type !== DhcpMessageType.ACK && type !== DhcpMessageType.NAK) return unexpected();
        return this.acknowledged(m, name);
      case 'RENEWING':
        if (type !== DhcpMessageType.ACK && type !== DhcpMessageType.NAK) return unexpected();
        if (m.options.serverIdentifier !== undefined && m.options.serverIdentifier !== this.currentLease!.serverIdentifier) {
          return countDrop(this.stats.drops, 'wrong-server');
        }
        return this.acknowledged(m, name);
      default:
        return unexpected();
    }
  }

  private acknowledged(m: DhcpMessage, name: string): void {
    if (m.options.messageType === DhcpMessageType.NAK) {
      countByName(this.stats.received, name);
      this.emit('nak', m.options.message, m.options.serverIdentifier);
      // RFC 2131 §3.1 step 5 / §4.4.5: NAK → drop the address and start over: after the random
      // startup wait the first time, then after a back-off that doubles with each NAK since the
      // last bind, so a server that NAKs everything cannot make us loop at wire speed.
      const { min, max } = this.options.startupDelayMs ?? DHCP_DEFAULTS.startupDelayMs;
      const backoff = this.failures === 0 ? 0 : Math.min(DHCP_DEFAULTS.nakBackoffInitialMs * 2 ** Math.min(this.failures - 1, 16), DHCP_DEFAULTS.nakBackoffMaxMs);
      this.failures++;
      return this.enterInit(min + randomBelow(this.options.random, Math.max(0, max - min) + 1) + backoff);
    }
    // RFC 2131 Table 3: an ACK to a REQUEST carries the lease time and the server identifier.
    if (m.options.leaseTime === undefined || m.options.serverIdentifier === undefined) return countDrop(this.stats.drops, 'incomplete-ack');
    if (m.yiaddr === 0) return countDrop(this.stats.drops, 'incomplete-ack');
    countByName(this.stats.received, name);
    const refusal = leaseRefusal(m);
    if (refusal !== undefined) return this.refuseAck(m, refusal);
    if (this.currentState === 'RENEWING' || this.currentState === 'REBINDING') {
      // The address is already probed and in use; a different one is probed like a new lease.
      if (m.yiaddr === this.currentLease?.address) return this.bind(m);
    }
    this.enterChecking(m);
  }

  private leaseFrom(ack: DhcpMessage): DhcpLease {
    const o = ack.options;
    // A lease shorter than the floor is taken as the floor: renewing every few seconds is no lease.
    const leaseTimeS = Math.max(o.leaseTime!, DHCP_DEFAULTS.leaseTimeFloorS);
    // Servers send T1 ≥ T2 or T2 ≥ lease now and then (smoltcp #1029): fall back to RFC 2131 §4.4.5.
    let rebindingTimeS = o.rebindingTime !== undefined && o.rebindingTime > 0 && o.rebindingTime < leaseTimeS ? o.rebindingTime : leaseTimeS * DHCP_DEFAULTS.rebindingFraction;
    let renewalTimeS = o.renewalTime !== undefined && o.renewalTime > 0 && o.renewalTime < rebindingTimeS ? o.renewalTime : leaseTimeS * DHCP_DEFAULTS.renewalFraction;
    if (renewalTimeS >= rebindingTimeS) renewalTimeS = rebindingTimeS / 2;
    if (leaseTimeS === INFINITE_LEASE) rebindingTimeS = renewalTimeS = INFINITE_LEASE;
    const subnetMask = leaseMask(ack);
    const startedAt = this.requestSentAt ?? this.options.clock.now();
    return {
      address: ack.yiaddr,
      subnetMask,
      prefixLength: maskToPrefixLength(subnetMask)!,
      routers: o.routers ?? [],
      dnsServers: (o.dnsServers ?? []).filter(isUsableUnicast),
      ...(o.domainName !== undefined && { domainName: o.domainName }),
      serverIdentifier: o.serverIdentifier!,
      leaseTimeS,
      renewalTimeS,
      rebindingTimeS,
      startedAt,
      startedAtEpochMs: this.options.clock.epochMs() - (this.options.clock.now() - startedAt),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Sending

  private send(
    type: number,
    extra: DhcpOptions,
    overrides: { xid?: number; ciaddr?: Ipv4Address; to?: Ipv4Address; secs?: number; broadcast?: boolean } = {},
  ): void {
    const { clock } = this.options;
    if (type === DhcpMessageType.REQUEST && this.requestSentAt === undefined) this.requestSentAt = clock.now();
    if (overrides.xid === undefined) this.transmissions++;
    const ciaddr = overrides.ciaddr ?? 0;
    const carriesParameters = type === DhcpMessageType.DISCOVER || type === DhcpMessageType.REQUEST;
    const options: DhcpOptions = {
      messageType: type,
      clientIdentifier: this.clientIdentifier,
      ...extra,
      ...(carriesParameters && {
        maxMessageSize: DHCP_DEFAULTS.maxMessageSize,
        parameterRequestList: this.options.parameterRequestList ?? DHCP_DEFAULTS.parameterRequestList,
        ...(this.options.hostName !== undefined && { hostName: this.options.hostName }),
      }),
    };
    const bytes = emitDhcpMessage({
      op: BOOTREQUEST,
      xid: overrides.xid ?? this.xid,
      chaddr: this.options.mac,
      // RFC 2131 Table 5: secs = seconds since the client began the exchange.
      secs: overrides.secs ?? this.secsNow(),
      // RFC 2131 §4.1: ask for a broadcast reply only while we cannot receive unicast (ciaddr 0).
      broadcast: overrides.broadcast ?? (ciaddr === 0 && (this.options.requestBroadcast ?? DHCP_DEFAULTS.requestBroadcast)),
      ciaddr,
      options,
    });
    countByName(this.stats.sent, DHCP_MESSAGE_TYPE_NAMES[type]!);
    this.socket?.send(bytes, DHCP_SERVER_PORT, overrides.to ?? IPV4_BROADCAST);
  }

  private secsNow(): number {
    return Math.min(0xffff, Math.floor((this.options.clock.now() - this.exchangeStartedAt) / 1000));
  }

  /**
   * RFC 2131 §4.1: 4 s, 8 s, 16 s … capped at 64 s, each ±1 s uniformly. Called just before the
   * transmission it follows up: a reply can arrive inside send() (a synchronous LAN) and move the
   * state on, and that transition must find this timer to cancel, not have it set afterwards.
   */
  private scheduleRetransmit(resend: () => void): void {
    const base = Math.min(DHCP_DEFAULTS.retransmitInitialMs * 2 ** this.transmissions, DHCP_DEFAULTS.retransmitMaxMs);
    const jitter = (randomUnit(this.options.random) * 2 - 1) * DHCP_DEFAULTS.retransmitJitterMs;
    this.cancelRetransmit();
    this.retransmitTimer = this.options.clock.schedule(base + jitter, resend);
  }

  private cancelRetransmit(): void {
    this.retransmitTimer?.cancel();
    this.retransmitTimer = undefined;
  }

  private cancelTimers(): void {
    this.cancelRetransmit();
    for (const t of this.leaseTimers) t.cancel();
    this.leaseTimers.length = 0;
  }

}
