import type { Clock, TimerHandle } from '../time/clock.js';
import { randomBelow, type Random } from '../time/random.js';
import { formatIpv4, formatMac, isMulticastMac, MAC_BROADCAST, MAC_ZERO, macEquals, type Ipv4Address, type MacAddress } from '../wire/address.js';
import { ArpOperation, ArpPacket, ArpRepr, ARP_PACKET_LENGTH } from '../wire/arp.js';
import { ETHERNET_HEADER_LENGTH, EthernetRepr, EtherType, writeEthernetDestination } from '../wire/ethernet.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import type { ArpEntryRow, NeighbourState } from '../stats/rows.js';
import type { EthernetLayer } from './ethernet.js';
import { allocateFrame } from './frame-allocator.js';
import type { NetInterface } from './interface.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';

/**
 * ARP (RFC 826) and address conflict detection (RFC 5227), in the manner of lwIP's etharp.c:
 * a bounded neighbour cache, a bounded queue of frames per unresolved neighbour, at most one
 * request per second per address, give-up after N requests, and re-request of in-use entries
 * shortly before they expire. Against a hostile LAN: a confirmed entry keeps its MAC for
 * `arpLocktimeMs` (Linux's locktime), a sender that no host can be is never learned, and an entry
 * in active use is never evicted for a new neighbour (`arpActiveUseMs`).
 */

interface Neighbour {
  readonly ifIndex: number;
  readonly ip: Ipv4Address;
  mac: MacAddress | undefined;
  state: NeighbourState;
  /** When a reachable entry stops being valid. */
  expiresAt: number;
  /** When its MAC was last learned or confirmed. */
  updatedAt: number;
  lastUsedAt: number;
  /** When we last sent through it (what "in active use" means: learning from a request is no use). */
  lastSentAt: number;
  lastRequestAt: number;
  requestsSent: number;
  /** Frames waiting for resolution; an element is one datagram (several frames if fragmented). */
  queue: (Uint8Array | readonly Uint8Array[])[];
  timer: TimerHandle | undefined;
}

export interface ArpConflict {
  readonly interfaceIndex: number;
  readonly address: Ipv4Address;
  /** The other host claiming the address. */
  readonly mac: MacAddress;
}

/** Upcalls to whoever composes the stack. */
export interface ArpHooks {
  conflict(conflict: ArpConflict): void;
  /** Resolution failed: `dropped` datagrams to `address` were discarded. */
  unresolved(interfaceIndex: number, address: Ipv4Address, dropped: number): void;
}

export type ArpOutputResult = 'sent' | 'queued' | 'dropped';

interface Probe {
  readonly ifIndex: number;
  readonly ip: Ipv4Address;
  timer: TimerHandle | undefined;
  finish(result: 'free' | 'conflict'): void;
}

export class ArpLayer {
  /** Key: interface index × 2^32 + IPv4 address (exact in a double). */
  private readonly cache = new Map<number, Neighbour>();
  private readonly probes = new Set<Probe>();

  constructor(
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    private readonly ethernet: EthernetLayer,
    private readonly interfaceByIndex: (index: number) => NetInterface | undefined,
    private readonly hooks: ArpHooks,
    private readonly trace: TraceHook = NO_TRACE,
  ) {}

  // ---------------------------------------------------------------- output

  /**
   * Send frames (built with our source MAC and EtherType, destination left blank) to `nextHop`.
   * Broadcast and multicast need no resolution; unicast waits in the neighbour's queue.
   */
  output(iface: NetInterface, nextHop: Ipv4Address, frames: Uint8Array | readonly Uint8Array[], destinationMac?: MacAddress): ArpOutputResult {
    if (destinationMac) {
      if (this.trace.emit) this.traceFrames(frames, `no lookup: ${formatIpv4(nextHop)} is a ${destinationMac[0] === 0xff ? 'broadcast' : 'multicast'} address → ${formatMac(destinationMac)}`);
      return this.transmitAll(iface, frames, destinationMac);
    }
    const key = iface.index * 0x1_0000_0000 + nextHop;
    const entry = this.cache.get(key);
    const now = this.clock.now();
    if (entry !== undefined && entry.mac !== undefined) {
      entry.lastUsedAt = now;
      entry.lastSentAt = now;
      if (this.trace.emit) {
        const expiry = entry.state === 'static' ? 'static' : `reachable, expires in ${((entry.expiresAt - now) / 1000).toFixed(0)} s`;
        this.traceFrames(frames, `cache hit: ${formatIpv4(nextHop)} is-at ${formatMac(entry.mac)} (${expiry})`);
      }
      if (entry.state === 'reachable' && now >= entry.expiresAt - this.options.arpRefreshBeforeExpiryMs) this.refresh(iface, entry, now);
      return this.transmitAll(iface, frames, entry.mac);
    }
    if (entry !== undefined) {
      entry.lastUsedAt = now;
      this.enqueue(entry, frames);
      if (this.trace.emit) this.traceFrames(frames, `cache: ${formatIpv4(nextHop)} still unresolved (${entry.requestsSent} request${entry.requestsSent === 1 ? '' : 's'} sent): queued, ${entry.queue.length} waiting`);
      return 'queued';
    }
    const fresh = this.insert(iface.index, nextHop, now);
    if (fresh === undefined) return 'dropped';
    this.enqueue(fresh, frames);
    if (this.trace.emit) this.traceFrames(frames, `cache miss: ${formatIpv4(nextHop)} unknown: queued until it answers; who-has ${formatIpv4(nextHop)} broadcast`);
    this.sendRequest(iface, fresh, now);
    return 'queued';
  }

  private traceFrames(frames: Uint8Array | readonly Uint8Array[], decision: string): void {
    if (frames instanceof Uint8Array) this.trace.emit?.('arp', 'out', decision, frames);
    else for (const frame of frames) this.trace.emit?.('arp', 'out', decision, frame);
  }

  private transmitAll(iface: NetInterface, frames: Uint8Array | readonly Uint8Array[], mac: MacAddress): ArpOutputResult {
    if (frames instanceof Uint8Array) {
      writeEthernetDestination(frames, mac);
      return this.ethernet.transmit(iface, frames) ? 'sent' : 'dropped';
    }
    let ok = true;
    for (const frame of frames) {
      writeEthernetDestination(frame, mac);
      ok = this.ethernet.transmit(iface, frame) && ok;
    }
    return ok ? 'sent' : 'dropped';
  }

  private enqueue(entry: Neighbour, frames: Uint8Array | readonly Uint8Array[]): void {
    if (entry.queue.length >= this.options.arpQueueLength) {
      entry.queue.shift();
      this.counters.drop('queue-full');
    }
    entry.queue.push(frames);
  }

  /** lwIP ARP_AGE_REREQUEST_USED_UNICAST: ask the known MAC directly, keep using the entry meanwhile. */
  private refresh(iface: NetInterface, entry: Neighbour, now: number): void {
    if (now - entry.lastRequestAt < this.options.arpRequestIntervalMs) return;
    entry.lastRequestAt = now;
    this.transmitArp(iface, ArpOperation.REQUEST, entry.mac!, entry.mac!, iface.sourceFor(entry.ip), entry.ip);
  }

  private sendRequest(iface: NetInterface, entry: Neighbour, now: number): void {
    entry.lastRequestAt = now;
    entry.requestsSent++;
    this.transmitArp(iface, ArpOperation.REQUEST, MAC_BROADCAST, MAC_ZERO, iface.sourceFor(entry.ip), entry.ip);
    entry.timer?.cancel();
    entry.timer = this.clock.schedule(this.options.arpRequestIntervalMs, () => this.retry(entry));
  }

  private retry(entry: Neighbour): void {
    entry.timer = undefined;
    if (entry.state !== 'incomplete') return;
    const iface = this.interfaceByIndex(entry.ifIndex);
    if (iface === undefined || entry.requestsSent >= this.options.arpMaxRequests) {
      this.giveUp(entry);
      return;
    }
    this.sendRequest(iface, entry, this.clock.now());
  }

  private giveUp(entry: Neighbour): void {
    const dropped = entry.queue.length;
    if (dropped > 0) this.counters.drop('unresolved', dropped);
    entry.queue = [];
    this.delete(entry);
    this.hooks.unresolved(entry.ifIndex, entry.ip, dropped);
  }

  // ---------------------------------------------------------------- cache

  /** A new incomplete entry, or undefined when the cache is full of entries that may not go. */
  private insert(ifIndex: number, ip: Ipv4Address, now: number): Neighbour | undefined {
    if (this.cache.size >= this.options.arpCacheSize && !this.evictLeastRecentlyUsed(now)) {
      this.counters.drop('cache-full');
      return undefined;
    }
    const entry: Neighbour = {
      ifIndex,
      ip,
      mac: undefined,
      state: 'incomplete',
      expiresAt: Infinity,
      updatedAt: -Infinity,
      lastUsedAt: now,
      lastSentAt: -Infinity,
      lastRequestAt: -Infinity,
      requestsSent: 0,
      queue: [],
      timer: undefined,
    };
    this.cache.set(ifIndex * 0x1_0000_0000 + ip, entry);
    return entry;
  }

  /**
   * Make room: evict the entry used longest ago, never a static one nor a resolved one in active
   * use. Returns false when there is none. A scan: eviction is rare and the cache small, so the
   * hot path pays nothing.
   */
  private evictLeastRecentlyUsed(now: number): boolean {
    let victim: Neighbour | undefined;
    for (const entry of this.cache.values()) {
      if (entry.state === 'static') continue;
      if (entry.state === 'reachable' && now - entry.lastSentAt < this.options.arpActiveUseMs) continue;
      if (victim === undefined || entry.lastUsedAt < victim.lastUsedAt) victim = entry;
    }
    if (victim === undefined) return false;
    if (victim.queue.length > 0) this.counters.drop('evicted-queue', victim.queue.length);
    this.counters.drop('cache-full-evicted');
    this.delete(victim);
    return true;
  }

  private delete(entry: Neighbour): void {
    entry.timer?.cancel();
    entry.timer = undefined;
    const key = entry.ifIndex * 0x1_0000_0000 + entry.ip;
    if (this.cache.get(key) === entry) this.cache.delete(key);
  }

  /** Record `mac` for `ip` and send whatever waited for it. */
  private learn(iface: NetInterface, entry: Neighbour, mac: MacAddress): void {
    const now = this.clock.now();
    if (entry.state === 'static') return;
    if (entry.mac !== undefined && !macEquals(entry.mac, 0, mac) && now - entry.updatedAt < this.options.arpLocktimeMs) {
      // Linux's locktime: a different MAC so soon after the last update is a race, not a move.
      this.counters.drop('locktime');
      return;
    }
    entry.updatedAt = now;
    entry.mac = mac.slice();
    entry.state = 'reachable';
    entry.expiresAt = now + this.options.arpEntryLifetimeMs;
    entry.requestsSent = 0;
    entry.timer?.cancel();
    entry.timer = this.clock.schedule(this.options.arpEntryLifetimeMs, () => this.expire(entry));
    const queue = entry.queue;
    entry.queue = [];
    if (queue.length > 0) entry.lastSentAt = now;
    for (const frames of queue) {
      if (this.trace.emit) this.traceFrames(frames, `resolved: ${formatIpv4(entry.ip)} is-at ${formatMac(mac)}; sending the frame that waited for it`);
      this.transmitAll(iface, frames, entry.mac);
    }
  }

  private expire(entry: Neighbour): void {
    entry.timer = undefined;
    if (entry.state !== 'reachable') return;
    this.delete(entry);
  }

  addStatic(ifIndex: number, ip: Ipv4Address, mac: MacAddress): void {
    const key = ifIndex * 0x1_0000_0000 + ip;
    const existing = this.cache.get(key);
    const queue = existing?.queue ?? [];
    if (existing) this.delete(existing);
    const entry: Neighbour = {
      ifIndex,
      ip,
      mac: mac.slice(),
      state: 'static',
      expiresAt: Infinity,
      updatedAt: this.clock.now(),
      lastUsedAt: this.clock.now(),
      lastSentAt: -Infinity,
      lastRequestAt: -Infinity,
      requestsSent: 0,
      queue: [],
      timer: undefined,
    };
    this.cache.set(key, entry);
    const iface = this.interfaceByIndex(ifIndex);
    if (iface) for (const frames of queue) this.transmitAll(iface, frames, entry.mac!);
  }

  /** Remove every entry for `ip` (on any interface). */
  remove(ip: Ipv4Address): boolean {
    let removed = false;
    for (const entry of [...this.cache.values()]) {
      if (entry.ip !== ip) continue;
      if (entry.queue.length > 0) this.counters.drop('removed-queue', entry.queue.length);
      this.delete(entry);
      removed = true;
    }
    return removed;
  }

  /** Forget learned entries of an interface (link down). Static entries stay. */
  flushInterface(ifIndex: number): void {
    for (const entry of [...this.cache.values()]) if (entry.ifIndex === ifIndex && entry.state !== 'static') this.delete(entry);
  }

  lookup(ifIndex: number, ip: Ipv4Address): MacAddress | undefined {
    return this.cache.get(ifIndex * 0x1_0000_0000 + ip)?.mac;
  }

  entries(): ArpEntryRow[] {
    const now = this.clock.now();
    return [...this.cache.values()].map((e) => ({
      interfaceIndex: e.ifIndex,
      interfaceName: this.interfaceByIndex(e.ifIndex)?.name ?? `#${e.ifIndex}`,
      address: formatIpv4(e.ip),
      mac: e.mac ? formatMac(e.mac) : undefined,
      state: e.state,
      expiresInMs: e.state === 'reachable' ? Math.max(0, e.expiresAt - now) : undefined,
      ageMs: e.state === 'reachable' ? Math.max(0, this.options.arpEntryLifetimeMs - (e.expiresAt - now)) : undefined,
      queued: e.queue.length,
    }));
  }

  // ---------------------------------------------------------------- input

  input(iface: NetInterface, payload: Uint8Array): void {
    this.counters.received++;
    const packet = ArpPacket.check(payload);
    if (!packet.ok) {
      this.dropInput(packet.reason);
      return;
    }
    const senderMac = packet.senderHardwareAddress;
    const senderIp = packet.senderProtocolAddress;
    const targetIp = packet.targetProtocolAddress;
    if (macEquals(senderMac, 0, iface.mac)) {
      this.dropInput('own-mac');
      return;
    }
    // No host has a group MAC or is at 0/8 (but 0.0.0.0, a probe), 127/8, multicast, class E or
    // the broadcast (RFC 1122 §3.2.1.3): learning one would send unicast to many, or to nobody.
    const senderNet = senderIp >>> 24;
    if (isMulticastMac(senderMac, 0)) {
      this.dropInput('bad-sender-mac');
      return;
    }
    if ((senderNet === 0 && senderIp !== 0) || senderNet === 127 || senderNet >= 224) {
      this.dropInput('bad-sender');
      return;
    }

    this.checkProbes(iface, packet.operation, senderMac, senderIp, targetIp);

    // RFC 5227 §2.4: someone else uses an address we hold.
    if (senderIp !== 0 && iface.hasAddress(senderIp)) {
      this.dropInput('address-conflict');
      this.hooks.conflict({ interfaceIndex: iface.index, address: senderIp, mac: senderMac.slice() });
      return;
    }

    const forUs = iface.hasAddress(targetIp);
    if (senderIp !== 0) {
      // RFC 826 "merge": update an existing entry whatever the target; create one only if we are the target.
      const key = iface.index * 0x1_0000_0000 + senderIp;
      let entry = this.cache.get(key);
      const known = entry !== undefined;
      if (entry === undefined && forUs) entry = this.insert(iface.index, senderIp, this.clock.now());
      this.trace.emit?.(
        'arp',
        'in',
        `${packet.operation === ArpOperation.REQUEST ? `who-has ${formatIpv4(targetIp)}` : 'reply'} from ${formatIpv4(senderIp)} (${formatMac(senderMac)}): ` +
          (entry === undefined ? 'not for us, cache unchanged' : `cache entry ${known ? 'updated' : 'created'}, reachable`) +
          (forUs && packet.operation === ArpOperation.REQUEST ? '; answering with our MAC' : ''),
      );
      if (entry !== undefined) this.learn(iface, entry, senderMac);
    } else this.trace.emit?.('arp', 'in', `probe for ${formatIpv4(targetIp)} from ${formatMac(senderMac)} (sender 0.0.0.0): cache unchanged`);

    if (forUs && packet.operation === ArpOperation.REQUEST) {
      this.transmitArp(iface, ArpOperation.REPLY, senderMac, senderMac, targetIp, senderIp);
    } else if (!forUs && senderIp !== 0) {
      this.counters.drop('not-for-us');
    }
  }

  private dropInput(reason: string): void {
    this.counters.drop(reason);
    this.trace.emit?.('arp', 'in', `dropped: ${reason}`);
  }

  // ---------------------------------------------------------------- RFC 5227

  /** RFC 5227 announcement (a gratuitous request: sender = target = our address). */
  announce(iface: NetInterface, ip: Ipv4Address): void {
    this.transmitArp(iface, ArpOperation.REQUEST, MAC_BROADCAST, MAC_ZERO, ip, ip);
  }

  /**
   * RFC 5227 §2.1.1 probe: after a random wait up to PROBE_WAIT, PROBE_NUM requests with sender
   * IP 0.0.0.0 spaced PROBE_MIN..PROBE_MAX apart, then ANNOUNCE_WAIT. Any ARP from another host
   * with sender IP = the address, or a probe for it from another host, is a conflict.
   */
  probe(iface: NetInterface, ip: Ipv4Address): Promise<'free' | 'conflict'> {
    return new Promise((resolve) => {
      let sent = 0;
      const o = this.options;
      const probe: Probe = {
        ifIndex: iface.index,
        ip,
        timer: undefined,
        finish: (result) => {
          probe.timer?.cancel();
          this.probes.delete(probe);
          resolve(result);
        },
      };
      const step = (): void => {
        if (sent < o.arpProbeCount) {
          sent++;
          this.transmitArp(iface, ArpOperation.REQUEST, MAC_BROADCAST, MAC_ZERO, 0, ip);
          const wait = sent < o.arpProbeCount ? o.arpProbeMinMs + randomBelow(this.random, o.arpProbeMaxMs - o.arpProbeMinMs + 1) : o.arpAnnounceWaitMs;
          probe.timer = this.clock.schedule(wait, step);
        } else probe.finish('free');
      };
      this.probes.add(probe);
      probe.timer = this.clock.schedule(randomBelow(this.random, o.arpProbeWaitMs + 1), step);
    });
  }

  private checkProbes(iface: NetInterface, operation: number, senderMac: MacAddress, senderIp: Ipv4Address, targetIp: Ipv4Address): void {
    if (this.probes.size === 0) return;
    for (const probe of this.probes) {
      if (probe.ifIndex !== iface.index) continue;
      const claims = senderIp === probe.ip;
      const probesToo = senderIp === 0 && operation === ArpOperation.REQUEST && targetIp === probe.ip;
      if (claims || probesToo) {
        this.counters.drop('probe-conflict');
        this.hooks.conflict({ interfaceIndex: iface.index, address: probe.ip, mac: senderMac.slice() });
        probe.finish('conflict');
      }
    }
  }

  // ---------------------------------------------------------------- emit

  private transmitArp(
    iface: NetInterface,
    operation: ArpOperation,
    frameDestination: MacAddress,
    targetMac: MacAddress,
    senderIp: Ipv4Address,
    targetIp: Ipv4Address,
  ): void {
    const frame = allocateFrame(ETHERNET_HEADER_LENGTH + ARP_PACKET_LENGTH);
    const at = EthernetRepr.emit({ destination: frameDestination, source: iface.mac, etherType: EtherType.ARP }, frame);
    ArpRepr.emit({ operation, senderMac: iface.mac, senderIp, targetMac, targetIp }, frame, at);
    this.trace.emit?.(
      'arp',
      'out',
      operation === ArpOperation.REPLY
        ? `reply: ${formatIpv4(senderIp)} is-at ${formatMac(iface.mac)}, to ${formatIpv4(targetIp)}`
        : senderIp === 0
          ? `probe (RFC 5227): does anyone use ${formatIpv4(targetIp)}?`
          : senderIp === targetIp
            ? `announcement (gratuitous ARP) of ${formatIpv4(senderIp)}`
            : `request: who-has ${formatIpv4(targetIp)} tell ${formatIpv4(senderIp)}${macEquals(frameDestination, 0, MAC_BROADCAST) ? ' (broadcast)' : ' (unicast refresh)'}`,
      frame,
    );
    if (this.ethernet.transmit(iface, frame)) this.counters.sent++;
  }
}
