import type { Clock, TimerHandle } from '../../src/time/clock.js';
import { SeededRandom, randomBelow, randomUnit, type Random } from '../../src/time/random.js';
import type { Nic } from '../../src/link/nic.js';
import { NicWrapper } from '../../src/link/nic-wrapper.js';
import { VirtualLan, type LanEndpoint, type LanPort } from './switch.js';

/**
 * Seeded, deterministic link impairment, in the spirit of Linux netem: a frame offered to an
 * ImpairmentChannel may be lost, duplicated, corrupted, held back behind the next frame
 * (reordered), queued behind a rate limit, and delayed (with jitter) before it is delivered.
 * Every decision comes from the channel's Random and every wait from the injected Clock, so a run
 * on a VirtualClock with the same seed is the same run.
 *
 * Stages, in order (a frame leaves the first stage that drops it):
 *   loss → duplication → corruption → reordering → rate limit (queue) → delay + jitter → deliver
 *
 * Used three ways: `ImpairmentChannel` (one direction of one link), `ImpairedLan` (a VirtualLan
 * whose ports each have a to-port and a from-port channel) and `ImpairedNic` (a wrapper around any
 * Nic, as smoltcp's FaultInjector wraps any Device).
 */
export interface ImpairmentConfig {
  /** Probability in [0, 1] that a frame is dropped. */
  readonly loss?: number;
  /** Probability in [0, 1] that a frame is delivered twice (the copy follows the original). */
  readonly duplicate?: number;
  /** Probability in [0, 1] that a frame gets `corruptBits` random bit flips. */
  readonly corrupt?: number;
  /** Bits flipped in a corrupted frame (default 1). */
  readonly corruptBits?: number;
  /**
   * First byte offset that corruption may touch (default 0). 14 keeps the Ethernet header intact,
   * so the damaged frame still reaches its port and exercises the upper layers' checks.
   */
  readonly corruptFromOffset?: number;
  /** Probability in [0, 1] that a frame is held back and delivered just after the next one. */
  readonly reorder?: number;
  /** A held-back frame with no successor is released after this long (default 10 ms). */
  readonly reorderHoldMs?: number;
  /** Fixed one-way delay in ms (default 0: synchronous delivery when nothing else applies). */
  readonly delayMs?: number;
  /**
   * Uniform jitter in ms added to `delayMs` (0..jitterMs). Order is kept, as on a real link:
   * a frame never overtakes the one before it (reordering is the `reorder` knob's job).
   */
  readonly jitterMs?: number;
  /** Link rate in bytes/s; frames serialize one after another (default: unlimited). */
  readonly rateBytesPerSecond?: number;
  /** Bytes the rate limiter's queue may hold (default 64 KiB); beyond it frames are tail-dropped. */
  readonly queueLimitBytes?: number;
}

export interface ImpairmentStats {
  /** Frames offered to the channel. */
  offered: number;
  /** Frames handed to the receiver (duplicates included). */
  delivered: number;
  deliveredBytes: number;
  lost: number;
  duplicated: number;
  corrupted: number;
  reordered: number;
  /** Frames that waited for the clock (delay, jitter or rate limit). */
  delayed: number;
  /** Tail drops of the rate limiter's queue. */
  queueDrops: number;
  /** Bytes waiting in the rate limiter right now. */
  queuedBytes: number;
}

export const DEFAULT_REORDER_HOLD_MS = 10;
/** Like a small switch port buffer: a few dozen full-size frames. */
export const DEFAULT_QUEUE_LIMIT_BYTES = 64 * 1024;

export function emptyImpairmentStats(): ImpairmentStats {
  return { offered: 0, delivered: 0, deliveredBytes: 0, lost: 0, duplicated: 0, corrupted: 0, reordered: 0, delayed: 0, queueDrops: 0, queuedBytes: 0 };
}

function checkProbability(name: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && value <= 1)) {
    throw Object.assign(new RangeError(`impairment ${name} must be a probability in [0, 1], got ${value}`), { code: 'ERR_OUT_OF_RANGE' });
  }
}

function checkNonNegative(name: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && Number.isFinite(value))) {
    throw Object.assign(new RangeError(`impairment ${name} must be a finite number ≥ 0, got ${value}`), { code: 'ERR_OUT_OF_RANGE' });
  }
}

export function validateImpairment(config: ImpairmentConfig): void {
  for (const key of ['loss', 'duplicate', 'corrupt', 'reorder'] as const) checkProbability(key, config[key]);
  for (const key of ['corruptBits', 'corruptFromOffset', 'reorderHoldMs', 'delayMs', 'jitterMs', 'queueLimitBytes'] as const) checkNonNegative(key, config[key]);
  if (config.rateBytesPerSecond !== undefined && !(config.rateBytesPerSecond > 0)) {
    throw Object.assign(new RangeError(`impairment rateBytesPerSecond must be > 0, got ${config.rateBytesPerSecond}`), { code: 'ERR_OUT_OF_RANGE' });
  }
}

/** One direction of one link. Frames go in through `offer` and come out through `deliver`. */
export class ImpairmentChannel {
  readonly stats: ImpairmentStats = emptyImpairmentStats();
  private config: ImpairmentConfig;
  private held: { frame: Uint8Array; timer: TimerHandle } | undefined;
  /** When the rate-limited link finishes sending what is queued (clock ms). */
  private linkFreeAt = 0;
  /** Delivery time of the last scheduled frame: jitter never reorders. */
  private lastDeliveryAt = 0;
  private readonly timers = new Set<TimerHandle>();
  private closed = false;

  constructor(
    config: ImpairmentConfig,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly deliver: (frame: Uint8Array) => void,
  ) {
    validateImpairment(config);
    this.config = { ...config };
  }

  get configuration(): ImpairmentConfig {
    return this.config;
  }

  /** Change the impairment; frames already in flight keep their schedule. */
  reconfigure(config: ImpairmentConfig): void {
    validateImpairment(config);
    this.config = { ...config };
  }

  /** True when no knob is set: frames pass straight through, synchronously. */
  get transparent(): boolean {
    const c = this.config;
    return !c.loss && !c.duplicate && !c.corrupt && !c.reorder && !c.delayMs && !c.jitterMs && c.rateBytesPerSecond === undefined;
  }

  offer(frame: Uint8Array): void {
    if (this.closed) return;
    const c = this.config;
    this.stats.offered++;
    if (c.loss && randomUnit(this.random) < c.loss) {
      this.stats.lost++;
      return;
    }
    const copies = c.duplicate && randomUnit(this.random) < c.duplicate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let out = frame;
      if (c.corrupt && randomUnit(this.random) < c.corrupt) out = this.corrupt(frame);
      this.reorderStage(out);
    }
  }

  /** Stop for good: everything in flight is dropped and later offers are ignored. */
  close(): void {
    this.closed = true;
    this.discardInFlight();
  }

  /** Drop every frame held, queued or delayed (a NIC going down); the channel stays usable. */
  discardInFlight(): void {
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    this.held?.timer.cancel();
    this.held = undefined;
    this.stats.queuedBytes = 0;
    this.linkFreeAt = 0;
    this.lastDeliveryAt = 0;
  }

  private corrupt(frame: Uint8Array): Uint8Array {
    const from = Math.min(this.config.corruptFromOffset ?? 0, frame.length);
    const span = frame.length - from;
    if (span === 0) return frame;
    // Never flip bits in the sender's buffer: it may be flooded to other ports unharmed.
    const copy = frame.slice();
    const bits = this.config.corruptBits ?? 1;
    for (let i = 0; i < bits; i++) {
      const bit = randomBelow(this.random, span * 8);
      copy[from + (bit >>> 3)]! ^= 1 << (bit & 7);
    }
    this.stats.corrupted++;
    return copy;
  }

  private reorderStage(frame: Uint8Array): void {
    const c = this.config;
    const held = this.held;
    if (!held && c.reorder && randomUnit(this.random) < c.reorder) {
      this.stats.reordered++;
      const timer = this.clock.schedule(c.reorderHoldMs ?? DEFAULT_REORDER_HOLD_MS, () => {
        if (this.held?.timer !== timer) return;
        this.held = undefined;
        this.rateStage(frame);
      });
      this.held = { frame, timer };
      return;
    }
    this.rateStage(frame);
    if (held) {
      held.timer.cancel();
      this.held = undefined;
      this.rateStage(held.frame);
    }
  }

  private rateStage(frame: Uint8Array): void {
    const rate = this.config.rateBytesPerSecond;
    const now = this.clock.now();
    if (rate === undefined) {
      this.delayStage(frame, now);
      return;
    }
    const limit = this.config.queueLimitBytes ?? DEFAULT_QUEUE_LIMIT_BYTES;
    if (this.stats.queuedBytes + frame.length > limit) {
      this.stats.queueDrops++;
      return;
    }
    const start = Math.max(now, this.linkFreeAt);
    this.linkFreeAt = start + (frame.length * 1000) / rate;
    this.stats.queuedBytes += frame.length;
    this.stats.delayed++;
    this.after(this.linkFreeAt - now, () => {
      this.stats.queuedBytes -= frame.length;
      this.delayStage(frame, this.clock.now(), true);
    });
  }

  private delayStage(frame: Uint8Array, now: number, alreadyCounted = false): void {
    const c = this.config;
    let delay = c.delayMs ?? 0;
    if (c.jitterMs) delay += randomUnit(this.random) * c.jitterMs;
    if (delay === 0 && this.lastDeliveryAt <= now) {
      this.emit(frame);
      return;
    }
    const at = Math.max(now + delay, this.lastDeliveryAt);
    this.lastDeliveryAt = at;
    if (!alreadyCounted) this.stats.delayed++;
    this.after(at - now, () => this.emit(frame));
  }

  private after(delayMs: number, run: () => void): void {
    const timer = this.clock.schedule(delayMs, () => {
      this.timers.delete(timer);
      if (!this.closed) run();
    });
    this.timers.add(timer);
  }

  private emit(frame: Uint8Array): void {
    this.stats.delivered++;
    this.stats.deliveredBytes += frame.length;
    this.deliver(frame);
  }
}

/** A stable 32-bit hash of a label, to give each channel its own seeded stream. */
function hashLabel(text: string): number {
  // FNV-1a.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Each channel draws from its own SeededRandom, derived from the run's seed and the channel's
 * name, so impairing one port does not change the draws (and so the fate of frames) on another.
 */
export function channelRandom(seed: number, name: string): Random {
  return new SeededRandom((seed ^ hashLabel(name)) >>> 0);
}

export interface PortImpairment {
  /** Frames the LAN delivers to this port (the port's receive direction). */
  readonly toPort?: ImpairmentConfig;
  /** Frames this port puts on the LAN (its transmit direction), before switching. */
  readonly fromPort?: ImpairmentConfig;
}

export interface PortImpairmentStats {
  toPort: ImpairmentStats;
  fromPort: ImpairmentStats;
}

interface ImpairedPort {
  readonly toPort: ImpairmentChannel;
  readonly fromPort: ImpairmentChannel;
}

/**
 * A VirtualLan with an impairment channel in each direction of each port, addressed by the
 * port's label (a VirtualNic's name). Ports plugged before or after `impair` are both covered.
 *
 *   const lan = new ImpairedLan(clock, { seed: 7 });
 *   lan.impair('vnic-b', { toPort: { loss: 0.1, delayMs: 5, jitterMs: 2 } });
 */
export class ImpairedLan extends VirtualLan {
  private readonly seed: number;
  private readonly ports = new Map<LanEndpoint, ImpairedPort>();
  private readonly configs = new Map<string, PortImpairment>();
  private defaultConfig: PortImpairment = {};

  constructor(clock: Clock, options: { seed?: number } = {}) {
    super(clock);
    this.seed = options.seed ?? 1;
  }

  /** Impair the port(s) with this label; applies at once to ports already plugged. */
  impair(label: string, config: PortImpairment): void {
    this.configs.set(label, config);
    for (const [endpoint, port] of this.ports) if (endpoint.label === label) this.apply(port, config);
  }

  /** Impairment for every port without its own. */
  impairAll(config: PortImpairment): void {
    this.defaultConfig = config;
    for (const [endpoint, port] of this.ports) if (!this.configs.has(endpoint.label)) this.apply(port, config);
  }

  /** Counters of the port with this label (the first, if several share it). */
  impairmentStats(label: string): PortImpairmentStats | undefined {
    for (const [endpoint, port] of this.ports) {
      if (endpoint.label === label) return { toPort: port.toPort.stats, fromPort: port.fromPort.stats };
    }
    return undefined;
  }

  override plug(endpoint: LanEndpoint): LanPort {
    const config = this.configs.get(endpoint.label) ?? this.defaultConfig;
    const inner = super.plug(endpoint);
    const name = endpoint.label;
    const port: ImpairedPort = {
      toPort: new ImpairmentChannel(config.toPort ?? {}, this.clock, channelRandom(this.seed, `${name}/to`), (frame) => endpoint.deliver(frame)),
      fromPort: new ImpairmentChannel(config.fromPort ?? {}, this.clock, channelRandom(this.seed, `${name}/from`), (frame) => inner.send(frame)),
    };
    this.ports.set(endpoint, port);
    return {
      label: inner.label,
      send: (frame) => port.fromPort.offer(frame),
      unplug: () => {
        port.toPort.close();
        port.fromPort.close();
        this.ports.delete(endpoint);
        inner.unplug();
      },
    };
  }

  protected override transmitTo(target: LanEndpoint, frame: Uint8Array): void {
    const port = this.ports.get(target);
    if (port) port.toPort.offer(frame);
    else super.transmitTo(target, frame);
  }

  private apply(port: ImpairedPort, config: PortImpairment): void {
    port.toPort.reconfigure(config.toPort ?? {});
    port.fromPort.reconfigure(config.fromPort ?? {});
  }
}

export interface ImpairedNicOptions {
  readonly clock: Clock;
  /** Seed for the two channels' streams (each direction gets its own). */
  readonly seed?: number;
  /** Frames the stack transmits. */
  readonly transmit?: ImpairmentConfig;
  /** Frames the NIC receives, before the stack sees them. */
  readonly receive?: ImpairmentConfig;
}

/**
 * Fault injection as a wrapper around any Nic (a chip driver, a TAP-backed NIC, a VirtualNic).
 * `transmit` returns true for a frame the impairment then loses: on a real wire the sender does
 * not know either. Drops are counted in `impairment`, not in the inner NIC's stats.
 */
export class ImpairedNic extends NicWrapper {
  readonly transmitChannel: ImpairmentChannel;
  readonly receiveChannel: ImpairmentChannel;

  constructor(inner: Nic, options: ImpairedNicOptions) {
    super(inner);
    const seed = options.seed ?? 1;
    this.transmitChannel = new ImpairmentChannel(options.transmit ?? {}, options.clock, channelRandom(seed, `${inner.name}/tx`), (frame) => {
      inner.transmit(frame);
    });
    this.receiveChannel = new ImpairmentChannel(options.receive ?? {}, options.clock, channelRandom(seed, `${inner.name}/rx`), (frame) =>
      this.handlers?.receive(frame),
    );
  }

  protected override onReceive(frame: Uint8Array): void {
    this.receiveChannel.offer(frame);
  }

  get impairment(): { transmit: ImpairmentStats; receive: ImpairmentStats } {
    return { transmit: this.transmitChannel.stats, receive: this.receiveChannel.stats };
  }

  override transmit(frame: Uint8Array): boolean {
    if (!this.inner.linkUp) return this.inner.transmit(frame);
    this.transmitChannel.offer(frame);
    return true;
  }

  override async stop(): Promise<void> {
    this.transmitChannel.discardInFlight();
    this.receiveChannel.discardInFlight();
    await this.inner.stop();
  }
}
