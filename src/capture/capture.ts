import type { Clock } from '../time/clock.js';
import type { Nic } from '../link/nic.js';
import { NicWrapper } from '../link/nic-wrapper.js';

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

export class CaptureNic extends NicWrapper {
  constructor(
    inner: Nic,
    private readonly clock: Clock,
    readonly sinks: CaptureSink[],
  ) {
    super(inner);
  }

  protected override onReceive(frame: Uint8Array): void {
    this.record('in', frame);
    super.onReceive(frame);
  }

  /** Outbound frames are recorded as the stack hands them over, like tcpdump at dev_queue_xmit. */
  override transmit(frame: Uint8Array): boolean {
    this.record('out', frame);
    return this.inner.transmit(frame);
  }

  override async stop(): Promise<void> {
    await this.inner.stop();
    await this.flush();
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
