import { formatMac, isBroadcastMac, isMulticastMac, macEquals } from '../wire/address.js';
import { EthernetFrame, EtherType, ETHERTYPE_MIN } from '../wire/ethernet.js';
import type { LayerCounters } from '../stats/counters.js';
import type { NetInterface } from './interface.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';

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
    private readonly trace: TraceHook = NO_TRACE,
  ) {}

  /** A frame from the Nic. Everything not for us is a counted drop. */
  input(iface: NetInterface, bytes: Uint8Array): void {
    this.counters.received++;
    const frame = EthernetFrame.check(bytes);
    if (!frame.ok) {
      this.drop('runt', bytes);
      return;
    }
    let linkBroadcast = false;
    if (isMulticastMac(bytes, 0)) {
      linkBroadcast = true;
      if (!isBroadcastMac(bytes, 0) && !iface.acceptsMulticastMac(bytes)) {
        this.drop('multicast-not-joined', bytes);
        return;
      }
    } else if (!macEquals(bytes, 0, iface.mac)) {
      this.drop('wrong-mac', bytes);
      return;
    }
    if (macEquals(bytes, 6, iface.mac)) {
      // Our own frame echoed back (a hub, a looped switch port): never process it.
      this.drop('own-frame', bytes);
      return;
    }
    const etherType = frame.etherType;
    this.trace.emit?.('ethernet', 'in', `${linkBroadcast ? (isBroadcastMac(bytes, 0) ? 'broadcast' : 'multicast') : 'unicast to our MAC'} from ${formatMac(frame.source)}, EtherType ${etherTypeName(etherType)}${etherType === EtherType.IPV4 ? ' → IP' : etherType === EtherType.ARP ? ' → ARP' : ''}`, bytes);
    if (etherType === EtherType.IPV4) this.handlers.ipv4(iface, frame.payload, linkBroadcast);
    else if (etherType === EtherType.ARP) this.handlers.arp(iface, frame.payload);
    else this.drop(etherType < ETHERTYPE_MIN ? 'ieee802.3-length' : 'unknown-ethertype', bytes);
  }

  /** Hand a complete frame to the Nic (which owns it from here on). */
  transmit(iface: NetInterface, frame: Uint8Array): boolean {
    this.trace.emit?.('ethernet', 'out', `header ${formatMac(frame.subarray(0, 6))} ← ${formatMac(frame.subarray(6, 12))}, EtherType ${etherTypeName((frame[12]! << 8) | frame[13]!)}, ${frame.length} bytes: handed to ${iface.nic.name}`, frame);
    if (!iface.nic.transmit(frame)) {
      this.counters.drop('nic-refused');
      this.trace.emit?.('ethernet', 'out', `${iface.nic.name} refused the frame (link down or queue full): dropped`, frame);
      return false;
    }
    this.counters.sent++;
    return true;
  }

  private drop(reason: string, frame: Uint8Array): void {
    this.counters.drop(reason);
    this.trace.emit?.('ethernet', 'in', `dropped: ${reason}`, frame);
  }
}

function etherTypeName(type: number): string {
  return type === EtherType.IPV4 ? 'IPv4' : type === EtherType.ARP ? 'ARP' : `0x${type.toString(16).padStart(4, '0')}`;
}
