import type { Nic } from './nic.js';
import { formatIpv4, macKey, multicastMacFor, prefixMask, toIpv4Address, type Ipv4Address, type MacAddress } from '../wire/address.js';

/**
 * One NetInterface per Nic: its addresses (each with its on-link route, through the hooks), and
 * the multicast groups it has joined, with the MAC filter that follows from them.
 */

export interface InterfaceAddress {
  readonly address: Ipv4Address;
  readonly prefixLength: number;
  /** Directed broadcast of the subnet (all host bits set). */
  readonly broadcast: Ipv4Address;
}

/** Upcalls from an interface to whoever composes the stack (set at setup, never imported). */
export interface InterfaceHooks {
  addressAdded(iface: NetInterface, address: InterfaceAddress): void;
  addressRemoved(iface: NetInterface, address: InterfaceAddress): void;
}

export class NetInterface {
  readonly mac: MacAddress;
  readonly addresses: InterfaceAddress[] = [];
  /** Joined IPv4 multicast groups, with a reference count. */
  private readonly groups = new Map<Ipv4Address, number>();
  /** Multicast MACs we accept (macKey → references). */
  private readonly multicastMacs = new Map<number, number>();

  constructor(
    readonly index: number,
    readonly name: string,
    readonly nic: Nic,
    private readonly hooks: InterfaceHooks,
  ) {
    this.mac = nic.mac.slice();
  }

  get mtu(): number {
    return this.nic.mtu;
  }

  get linkUp(): boolean {
    return this.nic.linkUp;
  }

  /** The first address: the source for traffic out of this interface. 0.0.0.0 if none yet. */
  get primaryAddress(): Ipv4Address {
    return this.addresses[0]?.address ?? 0;
  }

  /** Assign an address: adds the on-link route and announces it with a gratuitous ARP. */
  addAddress(address: Ipv4Address | string, prefixLength: number): InterfaceAddress {
    const ip = toIpv4Address(address);
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
      throw Object.assign(new RangeError(`Invalid prefix length ${prefixLength}`), { code: 'ERR_INVALID_ARG_VALUE' });
    }
    const existing = this.addresses.find((a) => a.address === ip);
    if (existing) this.removeAddress(ip);
    const mask = prefixMask(prefixLength);
    const entry: InterfaceAddress = { address: ip, prefixLength, broadcast: prefixLength >= 31 ? 0xffffffff : (ip | ~mask) >>> 0 };
    this.addresses.push(entry);
    this.hooks.addressAdded(this, entry);
    return entry;
  }

  removeAddress(address: Ipv4Address | string): boolean {
    const ip = toIpv4Address(address);
    const i = this.addresses.findIndex((a) => a.address === ip);
    if (i < 0) return false;
    const [entry] = this.addresses.splice(i, 1);
    this.hooks.addressRemoved(this, entry!);
    return true;
  }

  hasAddress(ip: Ipv4Address): boolean {
    const list = this.addresses;
    for (let i = 0; i < list.length; i++) if (list[i]!.address === ip) return true;
    return false;
  }

  /** A directed broadcast of one of this interface's subnets (RFC 1122 §3.2.1.3 (d)). */
  isDirectedBroadcast(ip: Ipv4Address): boolean {
    const list = this.addresses;
    for (let i = 0; i < list.length; i++) if (list[i]!.broadcast === ip && list[i]!.prefixLength < 31) return true;
    return false;
  }

  /** The address on the same subnet as `peer`, else the primary one. */
  sourceFor(peer: Ipv4Address): Ipv4Address {
    for (const a of this.addresses) {
      const mask = prefixMask(a.prefixLength);
      if (((a.address ^ peer) & mask) >>> 0 === 0) return a.address;
    }
    return this.primaryAddress;
  }

  joinMulticast(group: Ipv4Address): void {
    const n = this.groups.get(group) ?? 0;
    this.groups.set(group, n + 1);
    if (n > 0) return;
    const mac = multicastMacFor(group);
    const key = macKey(mac);
    const refs = this.multicastMacs.get(key) ?? 0;
    this.multicastMacs.set(key, refs + 1);
    if (refs === 0) this.nic.joinMulticast?.(mac);
  }

  leaveMulticast(group: Ipv4Address): void {
    const n = this.groups.get(group);
    if (n === undefined) return;
    if (n > 1) {
      this.groups.set(group, n - 1);
      return;
    }
    this.groups.delete(group);
    const mac = multicastMacFor(group);
    const key = macKey(mac);
    const refs = this.multicastMacs.get(key) ?? 0;
    if (refs <= 1) {
      this.multicastMacs.delete(key);
      this.nic.leaveMulticast?.(mac);
    } else this.multicastMacs.set(key, refs - 1);
  }

  isMemberOf(group: Ipv4Address): boolean {
    // RFC 1112 §7.2: every host belongs to the all-hosts group 224.0.0.1.
    return group === 0xe0000001 || this.groups.has(group);
  }

  acceptsMulticastMac(frame: Uint8Array): boolean {
    // 01:00:5e:00:00:01 (all-hosts) is always accepted.
    if (frame[0] === 0x01 && frame[1] === 0x00 && frame[2] === 0x5e && frame[3] === 0 && frame[4] === 0 && frame[5] === 1) return true;
    return this.multicastMacs.size > 0 && this.multicastMacs.has(macKey(frame, 0));
  }

  describe(): string {
    return `${this.index}: ${this.name} ${this.addresses.map((a) => `${formatIpv4(a.address)}/${a.prefixLength}`).join(' ')}`;
  }
}
