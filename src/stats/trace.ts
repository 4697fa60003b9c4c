/**
 * The trace hook: each layer, as it handles a packet, may say what it decided ("route
 * 0.0.0.0/0 via 192.0.2.1", "ARP cache hit", "written to transmit buffer 1"). The operator
 * console uses it to follow a packet through the layers in the order the seed notes teach them:
 * socket → TCP → IP (route lookup) → ARP cache → Ethernet header → driver → chip buffer → serial
 * bridge, and back up on receive.
 *
 * Off by default and free when off: every layer holds the same hook object, created when the
 * stack is composed, and calls `hook.emit?.(…)`. While `emit` is undefined JavaScript evaluates
 * none of the call's arguments, so no decision text is built. Whoever composes the stack sets
 * `emit` while someone is watching and clears it afterwards.
 */

/** The layers that report, top to bottom. */
export type TraceLayer = 'socket' | 'tcp' | 'udp' | 'icmp' | 'ip' | 'arp' | 'ethernet' | 'driver' | 'chip' | 'bridge';

/** Top-to-bottom order of the layers (the send path's order; receive runs it backwards). */
export const TRACE_LAYERS: readonly TraceLayer[] = ['socket', 'tcp', 'udp', 'icmp', 'ip', 'arp', 'ethernet', 'driver', 'chip', 'bridge'];

/**
 * One decision. `frame` is the Ethernet frame it concerns once that exists: IP builds the whole
 * frame for a datagram it sends, and that same object travels through ARP, Ethernet and the NIC,
 * so the object itself ties the layers' reports together. Above IP (a TCP segment not framed yet)
 * and on receive above Ethernet (the layers see only a payload) it is absent: those reports
 * belong to the frame being handled in the same synchronous call chain.
 */
export type Tracer = (layer: TraceLayer, direction: 'in' | 'out', decision: string, frame?: Uint8Array) => void;

/** The shared hook: `emit` undefined means tracing is off. */
export interface TraceHook {
  emit: Tracer | undefined;
}

export function createTraceHook(): TraceHook {
  return { emit: undefined };
}

/** A hook nobody can turn on, for layers composed without one. */
export const NO_TRACE: TraceHook = Object.freeze({ emit: undefined }) as TraceHook;
