import type { Clock } from '../../src/time/clock.js';
import { type Nic, type NicHandlers, type NicStats, emptyNicStats } from '../../src/link/nic.js';
import { countDrop } from '../../src/stats/counters.js';
import { formatMac, isMulticastMac, macKey, type MacAddress } from '../../src/wire/address.js';

/**
 * The cable side of anything that plugs into a VirtualLan: an emulated chip's PHY, a TAP relay,
 * or a VirtualNic. The LAN calls `deliver` with frames for it; the endpoint calls the `send`
 * it was given when it plugged in.
 */
export interface LanEndpoint {
  readonly label: string;
  deliver(frame: Uint8Array): void;
}

export interface LanPort {
  /** Put a frame on the wire from this port. */
  send(frame: Uint8Array): void;
  unplug(): void;
  readonly label: string;
}

/**
 * An in-process learning switch. Frames to a learned unicast MAC go to that port only; broadcast,
 * multicast and unknown unicast flood to every other port. Delivery is synchronous unless an
 * impairment (hal/lan/impairment.ts) adds delay.
 */
export class VirtualLan {
  private readonly endpoints = new Set<LanEndpoint>();
  private readonly macTable = new Map<number, LanEndpoint>();
  framesForwarded = 0;

  constructor(readonly clock: Clock) {}

  plug(endpoint: LanEndpoint): LanPort {
    this.endpoints.add(endpoint);
    return {
      label: endpoint.label,
      send: (frame) => this.forward(endpoint, frame),
      unplug: () => {
        this.endpoints.delete(endpoint);
        for (const [k, v] of this.macTable) if (v === endpoint) this.macTable.delete(k);
      },
    };
  }

  /** Hook for impairment: subclasses or wrappers may override how a frame reaches a port. */
  protected transmitTo(target: LanEndpoint, frame: Uint8Array): void {
    target.deliver(frame);
  }

  private forward(from: LanEndpoint, frame: Uint8Array): void {
    if (frame.length < 14) return;
    this.framesForwarded++;
    if (!isMulticastMac(frame, 6)) this.macTable.set(macKey(frame, 6), from);
    if (!isMulticastMac(frame, 0)) {
      const target = this.macTable.get(macKey(frame, 0));
      if (target && target !== from && this.endpoints.has(target)) {
        this.transmitTo(target, frame);
        return;
      }
    }
    for (const endpoint of this.endpoints) if (endpoint !== from) this.transmitTo(endpoint, frame);
  }

  describe(): string[] {
    return [...this.macTable].map(([key, ep]) => {
      const mac = new Uint8Array(6);
      let k = key;
      for (let i = 5; i >= 0; i--) {
        mac[i] = k % 256;
        k = Math.floor(k / 256);
      }
      return `${formatMac(mac)} -> ${ep.label}`;
    });
  }
}

/**
 * A NIC straight on the virtual LAN, no chip in between (`--board virtual`). Delivers frames
 * exactly as a chip with its filter in promiscuous mode would: the stack's Ethernet layer filters.
 */
export class VirtualNic implements Nic {
  readonly capabilities = { maxFrameSize: 1514, multicastFilter: false, rxCrcCheck: true };
  private handlers: NicHandlers | undefined;
  private port: LanPort | undefined;
  private up = false;
  private readonly counters: NicStats = emptyNicStats();

  constructor(
    private readonly lan: VirtualLan,
    readonly mac: MacAddress,
    readonly name = `vnic-${formatMac(mac)}`,
    readonly mtu = 1500,
  ) {}

  get linkUp(): boolean {
    return this.up;
  }

  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }

  async start(): Promise<void> {
    if (this.port) return;
    this.port = this.lan.plug({
      label: this.name,
      deliver: (frame) => {
        if (!this.up) return;
        this.counters.rxFrames++;
        this.counters.rxBytes += frame.length;
        this.handlers?.receive(frame);
      },
    });
    this.up = true;
    this.handlers?.linkChange(true);
  }

  async stop(): Promise<void> {
    this.port?.unplug();
    this.port = undefined;
    if (this.up) {
      this.up = false;
      this.handlers?.linkChange(false);
    }
  }

  transmit(frame: Uint8Array): boolean {
    if (!this.up || !this.port) {
      countDrop(this.counters.drops, 'link-down');
      return false;
    }
    if (frame.length > this.capabilities.maxFrameSize || frame.length < 14) {
      countDrop(this.counters.drops, 'bad-length');
      return false;
    }
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.port.send(frame);
    return true;
  }

  stats(): NicStats {
    return this.counters;
  }
}
