/**
 * The counters every layer keeps, here so that any layer may import them (the code that prints
 * them sits above, in src/stack/tables.ts). Drops are how malformed or unwanted input shows up —
 * never as an exception — and each is counted under its reason by `countDrop`.
 */

/** Counts by name: drops by reason, messages by type. */
export type CountsByName = Record<string, number>;

/**
 * Add `count` to `table[name]`, which starts at 0. The table is open (`CountsByName`) or has
 * a field per name (TCP's drop reasons).
 */
export function countByName<Name extends string>(table: { [N in Name]?: number }, name: Name, count = 1): void {
  table[name] = (table[name] ?? 0) + count;
}

/** Count a dropped frame, packet or message under its reason: the one way every layer does it. */
export function countDrop<Reason extends string>(drops: { [R in Reason]?: number }, reason: Reason, count = 1): void {
  countByName(drops, reason, count);
}

/** Per-layer counters: what came in, what went out, and every drop with its reason. */
export class LayerCounters {
  received = 0;
  sent = 0;
  readonly dropped: CountsByName = {};

  drop(reason: string, count = 1): void {
    countDrop(this.dropped, reason, count);
  }

  get totalDropped(): number {
    let n = 0;
    for (const k in this.dropped) n += this.dropped[k]!;
    return n;
  }

  snapshot(): LayerCountersSnapshot {
    return { received: this.received, sent: this.sent, dropped: { ...this.dropped } };
  }
}

export interface LayerCountersSnapshot {
  readonly received: number;
  readonly sent: number;
  readonly dropped: Readonly<Record<string, number>>;
}

export interface StackCounters {
  readonly ethernet: LayerCounters;
  readonly arp: LayerCounters;
  readonly ipv4: LayerCounters;
  readonly icmp: LayerCounters;
  readonly udp: LayerCounters;
}

export type StackCountersSnapshot = { readonly [K in keyof StackCounters]: LayerCountersSnapshot };

export function createCounters(): StackCounters {
  return { ethernet: new LayerCounters(), arp: new LayerCounters(), ipv4: new LayerCounters(), icmp: new LayerCounters(), udp: new LayerCounters() };
}

/** A transport's own counters (TCP's: segments, retransmissions, drops by reason, …), nested. */
export interface NamedCounters {
  readonly [name: string]: number | NamedCounters;
}
