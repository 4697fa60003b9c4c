import { isBroadcastMac, isMulticastMac, macEquals } from '../wire/address.js';
import { EthernetFrame, EtherType, ETHERTYPE_MIN } from '../wire/ethernet.js';
import type { LayerCounters } from '../stats/counters.js';
import type { NetInterface } from './interface.js';

/**
 * Ethernet II receive dispatch for every NetInterface (like lwIP's ethernet_input). Receive: Nic → EthernetLayer.input → ARP or IPv4 handler. Send: the IP layer
 * builds whole frames (src/link/frame-allocator.ts) and hands them to ARP, which fills the
 * destination MAC and calls EthernetLayer.transmit.
 */

/** Receivers of the EtherTypes we speak. `linkBroadcast` is true for broadcast/multicast frames. */
export interface EthernetHandlers {
  arp(iface: NetInterface, payload: Uint8Array): void;
  ipv4(iface: NetInterface, payload: Uint8Array, linkBroadcast: boolean): void;
}

export class EthernetLayer {
  constructor(
    private readonly counters: LayerCounters,
    private readonly handlers: EthernetHandlers,
  ) {}

  /** A frame from the Nic. Everything not for us is a counted drop. */
  input(iface: NetInterface, bytes: Uint8Array): void {
    this.counters.received++;
    const frame = EthernetFrame.check(bytes);
    if (!frame.ok) {
      this.counters.drop('runt');
      return;
    }
    let linkBroadcast = false;
    if (isMulticastMac(bytes, 0)) {
      linkBroadcast = true;
      if (!isBroadcastMac(bytes, 0) && !iface.acceptsMulticastMac(bytes)) {
        this.counters.drop('multicast-not-joined');
        return;
      }
    } else if (!macEquals(bytes, 0, iface.mac)) {
      this.counters.drop('wrong-mac');
      return;
    }
    if (macEquals(bytes, 6, iface.mac)) {
      // Our own frame echoed back (a hub, a looped switch port): never process it.
      this.counters.drop('own-frame');
      return;
    }
    const etherType = frame.etherType;
    if (etherType === EtherType.IPV4) this.handlers.ipv4(iface, frame.payload, linkBroadcast);
    else if (etherType === EtherType.ARP) this.handlers.arp(iface, frame.payload);
    else this.counters.drop(etherType < ETHERTYPE_MIN ? 'ieee802.3-length' : 'unknown-ethertype');
  }

  /** Hand a complete frame to the Nic (which owns it from here on). */
  transmit(iface: NetInterface, frame: Uint8Array): boolean {
    if (!iface.nic.transmit(frame)) {
      this.counters.drop('nic-refused');
      return false;
    }
    this.counters.sent++;
    return true;
  }
}
