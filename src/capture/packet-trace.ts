import type { Clock } from '../time/clock.js';
import type { TraceHook, TraceLayer, Tracer } from '../stats/trace.js';
import type { CaptureDirection, CaptureSink, CapturedFrame } from './capture.js';

/**
 * "Follow a packet": every captured frame together with what each layer decided about it, in
 * the trace hook's words (src/stats/trace.ts). A capture sink (it sees each frame at the NIC) and
 * the tracer at once; the console keeps the last frames and shows a frame's path on request.
 *
 * How reports find their frame: below IP the frame object itself is passed along, so a report
 * that names a frame belongs to it. Reports without one belong to the packet being handled in
 * the same synchronous call chain: on the way out, the socket's and the transport's reports wait
 * for the next frame IP builds; on the way in, the layers above Ethernet report while the frame
 * the NIC handed up is still being processed. Both are forgotten when the chain ends (the next
 * microtask), so a report never drifts to an unrelated frame.
 */
export interface TraceStep {
  /** The injected clock's `now()` when the layer reported. */
  readonly timeMs: number;
  readonly layer: TraceLayer;
  readonly direction: CaptureDirection;
  readonly decision: string;
}

export interface TracedFrame {
  /** Increasing from 1 in capture order. */
  readonly id: number;
  readonly timestampMs: number;
  readonly direction: CaptureDirection;
  readonly interfaceName: string;
  /** A copy of the frame's bytes. */
  readonly bytes: Uint8Array;
  /** The layers' reports so far; more arrive after capture (driver, chip, serial link). */
  readonly steps: TraceStep[];
}

interface Group {
  readonly steps: TraceStep[];
  frame?: TracedFrame;
}

export interface PacketTraceOptions {
  /** Frames kept (oldest dropped first). Default 2000. */
  readonly limit?: number;
}

export class PacketTraceRecorder implements CaptureSink {
  private readonly groups = new WeakMap<Uint8Array, Group>();
  private readonly kept: TracedFrame[] = [];
  private readonly limit: number;
  private nextId = 1;
  private pendingOut: TraceStep[] = [];
  private currentIn: Group | undefined;
  private clearScheduled = false;
  private readonly listeners = new Set<(frame: TracedFrame) => void>();

  constructor(
    private readonly clock: Clock,
    options: PacketTraceOptions = {},
  ) {
    this.limit = options.limit ?? 2000;
  }

  /** The function to put in a TraceHook's `emit`. */
  readonly tracer: Tracer = (layer, direction, decision, frame) => {
    const step: TraceStep = { timeMs: this.clock.now(), layer, direction, decision };
    if (frame) {
      let group = this.groups.get(frame);
      if (group === undefined) {
        // IP (a datagram) and ARP (its own messages) build outgoing frames: what the layers above
        // said since belongs to this one. A first report from below (tracing began mid-way) does not.
        group = { steps: direction === 'out' && (layer === 'ip' || layer === 'arp') ? this.takePendingOut() : [] };
        this.groups.set(frame, group);
      }
      group.steps.push(step);
      if (direction === 'in') this.setCurrentIn(group);
      return;
    }
    if (direction === 'out') this.pendingOut.push(step);
    else this.currentIn?.steps.push(step);
    this.scheduleClear();
  };

  /** Turn the hook on (this recorder's tracer) or off. */
  attach(hook: TraceHook, on: boolean): void {
    hook.emit = on ? this.tracer : undefined;
  }

  record(captured: CapturedFrame): void {
    let group = this.groups.get(captured.bytes);
    if (group === undefined) {
      group = { steps: [] };
      this.groups.set(captured.bytes, group);
    }
    if (captured.direction === 'in') this.setCurrentIn(group);
    const frame: TracedFrame = {
      id: this.nextId++,
      timestampMs: captured.timestampMs,
      direction: captured.direction,
      interfaceName: captured.interfaceName,
      bytes: captured.bytes.slice(),
      steps: group.steps,
    };
    group.frame = frame;
    this.kept.push(frame);
    if (this.kept.length > this.limit) this.kept.shift();
    for (const listener of this.listeners) listener(frame);
  }

  /** Called for every frame as it is captured. */
  onFrame(listener: (frame: TracedFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The frames kept, oldest first. */
  frames(): readonly TracedFrame[] {
    return this.kept;
  }

  frame(id: number): TracedFrame | undefined {
    // Ids are consecutive within the kept window.
    const first = this.kept[0];
    return first === undefined ? undefined : this.kept[id - first.id];
  }

  private takePendingOut(): TraceStep[] {
    const steps = this.pendingOut;
    this.pendingOut = [];
    return steps;
  }

  private setCurrentIn(group: Group): void {
    this.currentIn = group;
    this.scheduleClear();
  }

  private scheduleClear(): void {
    if (this.clearScheduled) return;
    this.clearScheduled = true;
    queueMicrotask(() => {
      this.clearScheduled = false;
      this.pendingOut = [];
      this.currentIn = undefined;
    });
  }
}
