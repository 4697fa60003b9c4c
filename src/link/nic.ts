import type { MacAddress } from '../wire/address.js';

/**
 * The contract between the stack and anything that moves Ethernet frames: the virtual LAN port,
 * a TAP attachment, the ENC28J60 and W5500 drivers, and wrappers (capture, fault injection).
 *
 * A frame is an Ethernet II frame from the destination MAC to the end of the payload: no preamble,
 * no FCS, no padding required (the NIC pads short frames to 60 bytes and appends the CRC).
 */
export interface NicCapabilities {
  /** Largest frame `transmit` accepts, without FCS: 14 + MTU (1514 for Ethernet). */
  readonly maxFrameSize: number;
  /** The NIC filters multicast by address (joinMulticast is meaningful). */
  readonly multicastFilter: boolean;
  /** The NIC checks the FCS of received frames and drops bad ones itself. */
  readonly rxCrcCheck: boolean;
  /**
   * Frames the NIC can hold before it drops them, when that is small enough to matter: its
   * buffer, and what each frame costs in it beyond the bytes from the Ethernet header on. A chip
   * behind a slow link (the ENC28J60 over a serial bridge: a 5 KB ring drained at 100 kB/s)
   * overflows whenever a peer sends faster than the link drains, so TCP advertises no more
   * than fits (tcp.ts receiveWindowFor()).
   */
  readonly receiveBuffer?: { readonly bytes: number; readonly frameOverhead: number };
}

export interface NicHandlers {
  /**
   * A received frame. The bytes are read-only for the receiver and stay valid after the call
   * (the NIC never reuses a buffer it handed up).
   */
  receive(frame: Uint8Array): void;
  /** The link came up or went down. */
  linkChange(up: boolean): void;
}

export interface NicStats {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** Drops by reason, e.g. { 'tx-queue-full': 3, 'rx-overflow': 1 }. */
  drops: Record<string, number>;
}

export interface Nic {
  readonly name: string;
  readonly mac: MacAddress;
  /** IP MTU: largest IP datagram in one frame (1500 for Ethernet). */
  readonly mtu: number;
  readonly capabilities: NicCapabilities;
  readonly linkUp: boolean;
  /** Register the (single) consumer of received frames and link events. */
  attach(handlers: NicHandlers): void;
  /**
   * Queue a frame for transmission. The NIC takes ownership of `frame` (the caller must not
   * change it afterwards). Returns false if it was dropped (link down, queue full); that drop is
   * counted in stats().
   */
  transmit(frame: Uint8Array): boolean;
  /** Bring the NIC up (initialise hardware, open the cable). */
  start(): Promise<void>;
  /** Take it down; pending frames are flushed or dropped. */
  stop(): Promise<void>;
  joinMulticast?(mac: MacAddress): void;
  leaveMulticast?(mac: MacAddress): void;
  /**
   * Receive every frame on the wire, not only those for our MAC (the chip's receive filter off),
   * so a capture sees the LAN segment; the stack's Ethernet layer still drops what is not ours.
   * Absent where frames are never filtered below the stack.
   */
  setPromiscuous?(on: boolean): void;
  stats(): NicStats;
}

export function emptyNicStats(): NicStats {
  return { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, drops: {} };
}
