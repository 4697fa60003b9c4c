import type { Clock } from '../time/clock.js';
import type { Nic, NicHandlers, NicStats } from '../link/nic.js';
import type { MacAddress } from '../wire/address.js';

/**
 * Frame capture as a wrapper around any Nic (smoltcp's Tracer/PcapWriter idea): the stack talks to
 * a CaptureNic exactly as to the NIC inside it, and every frame, in either direction, is handed to
 * the sinks first — the text log, the JSON-lines log, the pcapng writer.
 */
export type CaptureDirection = 'in' | 'out';

export interface CapturedFrame {
  /** Milliseconds since the Unix epoch (fractional), from the injected clock's `epochMs()`. */
  readonly timestampMs: number;
  readonly direction: CaptureDirection;
  /** The NIC's name: one pcapng interface per name. */
  readonly interfaceName: string;
  /** The frame as on the wire, without FCS. Valid only during `record`: sinks copy what they keep. */
  readonly bytes: Uint8Array;
}

export interface CaptureSink {
  record(frame: CapturedFrame): void;
  /** Push buffered output to its destination. */
  flush?(): Promise<void>;
  /** Flush and release the destination. */
  close?(): Promise<void>;
}

export class CaptureNic implements Nic {
  private handlers: NicHandlers | undefined;

  constructor(
    readonly inner: Nic,
    private readonly clock: Clock,
    readonly sinks: CaptureSink[],
  ) {
    inner.attach({
      receive: (frame) => {
        this.record('in', frame);
        this.handlers?.receive(frame);
      },
      linkChange: (up) => this.handlers?.linkChange(up),
    });
  }

  get name(): string {
    return this.inner.name;
  }
  get mac(): MacAddress {
    return this.inner.mac;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get capabilities(): Nic['capabilities'] {
    return this.inner.capabilities;
  }
  get linkUp(): boolean {
    return this.inner.linkUp;
  }

  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }

  /** Outbound frames are recorded as the stack hands them over, like tcpdump at dev_queue_xmit. */
  transmit(frame: Uint8Array): boolean {
    this.record('out', frame);
    return this.inner.transmit(frame);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async stop(): Promise<void> {
    await this.inner.stop();
    await this.flush();
  }

  joinMulticast(mac: MacAddress): void {
    this.inner.joinMulticast?.(mac);
  }

  leaveMulticast(mac: MacAddress): void {
    this.inner.leaveMulticast?.(mac);
  }

  stats(): NicStats {
    return this.inner.stats();
  }

  async flush(): Promise<void> {
    for (const sink of this.sinks) await sink.flush?.();
  }

  /** Close every sink (the NIC itself keeps running). */
  async closeSinks(): Promise<void> {
    for (const sink of this.sinks) await sink.close?.();
  }

  private record(direction: CaptureDirection, bytes: Uint8Array): void {
    if (this.sinks.length === 0) return;
    const captured: CapturedFrame = { timestampMs: this.clock.epochMs(), direction, interfaceName: this.inner.name, bytes };
    for (const sink of this.sinks) sink.record(captured);
  }
}
