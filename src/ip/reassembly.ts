import type { Clock, TimerHandle } from '../time/clock.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import { IPV4_MAX_TOTAL_LENGTH, Ipv4Packet } from '../wire/ipv4.js';
import { internetChecksum } from '../wire/checksum.js';

/**
 * IPv4 reassembly (RFC 791 §3.2, RFC 815 hole tracking by sorted fragment list), with:
 * - bounded memory: bytes held across all datagrams and the number of datagrams are capped;
 *   the oldest datagram makes room (counted);
 * - overlap policy after RFC 5722 (written for IPv6, adopted here): a fragment that overlaps
 *   another discards the whole datagram, including fragments still to come (the key is
 *   remembered until the timeout). An exact duplicate of a received fragment is ignored;
 * - a timeout that frees everything and, if fragment 0 arrived, reports for ICMP time exceeded.
 */
interface Fragment {
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface Datagram {
  readonly key: string;
  readonly createdAt: number;
  fragments: Fragment[];
  /** Payload length once the last fragment (MF = 0) is in. */
  totalLength: number | undefined;
  received: number;
  /** The first fragment's complete packet (header + data), for the rebuilt header and for ICMP. */
  first: Uint8Array | undefined;
  /** RFC 5722: discard this datagram and anything more of it until the timer fires. */
  poisoned: boolean;
  timer: TimerHandle;
}

export class Reassembler {
  private readonly datagrams = new Map<string, Datagram>();
  private heldBytes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    /** Reassembly timed out; `firstFragment` is fragment 0 (header + data) if it arrived. */
    private readonly timedOut: (firstFragment: Uint8Array | undefined) => void,
  ) {}

  /** Bytes currently held (for tests and the stack's tables). */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  get pending(): number {
    let n = 0;
    for (const d of this.datagrams.values()) if (!d.poisoned) n++;
    return n;
  }

  /**
   * Add a fragment. Returns the complete datagram (a fresh buffer: header from fragment 0 with
   * offset/MF cleared, then the whole payload) when this fragment completes it.
   */
  add(packet: Ipv4Packet): Uint8Array | undefined {
    const key = `${packet.source}/${packet.destination}/${packet.protocol}/${packet.identification}`;
    const start = packet.fragmentOffset;
    const data = packet.payload;
    const end = start + data.length;
    const more = packet.moreFragments;

    // RFC 791: every fragment but the last carries a multiple of 8 bytes.
    if (more && data.length % 8 !== 0) {
      this.counters.drop('fragment-bad-length');
      return undefined;
    }
    if (end + packet.headerLength > IPV4_MAX_TOTAL_LENGTH || (more && data.length === 0)) {
      this.counters.drop('fragment-oversize');
      this.poison(this.datagrams.get(key));
      return undefined;
    }

    let datagram = this.datagrams.get(key);
    if (datagram === undefined) {
      this.makeRoom(data.length);
      if (data.length > this.options.ipReassemblyMaxBytes) {
        this.counters.drop('reassembly-memory');
        return undefined;
      }
      datagram = {
        key,
        createdAt: this.clock.now(),
        fragments: [],
        totalLength: undefined,
        received: 0,
        first: undefined,
        poisoned: false,
        timer: this.clock.schedule(this.options.ipReassemblyTimeoutMs, () => this.expire(key)),
      };
      this.datagrams.set(key, datagram);
    } else if (datagram.poisoned) {
      this.counters.drop('fragment-of-discarded');
      return undefined;
    }

    if (!more) {
      if (datagram.totalLength !== undefined && datagram.totalLength !== end) return this.reject(datagram, 'fragment-inconsistent-length');
      datagram.totalLength = end;
    }
    // Past the end: this fragment, or (when this one is the last) one already held — the list is
    // sorted and without overlaps, so its last fragment ends furthest.
    const furthest = Math.max(end, datagram.fragments.at(-1)?.end ?? 0);
    if (datagram.totalLength !== undefined && furthest > datagram.totalLength) return this.reject(datagram, 'fragment-beyond-end');

    // Insert in order; any overlap that is not an exact duplicate poisons the datagram.
    const list = datagram.fragments;
    let at = 0;
    while (at < list.length && list[at]!.start < start) at++;
    const before = list[at - 1];
    const after = list[at];
    if (after && after.start === start && after.end === end) {
      this.counters.drop('fragment-duplicate');
      return undefined;
    }
    if ((before && before.end > start) || (after && after.start < end)) return this.reject(datagram, 'fragment-overlap');

    if (this.heldBytes + data.length > this.options.ipReassemblyMaxBytes) {
      this.makeRoom(data.length, datagram);
      if (this.heldBytes + data.length > this.options.ipReassemblyMaxBytes) return this.reject(datagram, 'reassembly-memory');
    }
    // Received frames stay valid (Nic contract), so we keep views, not copies.
    list.splice(at, 0, { start, end, data });
    datagram.received += data.length;
    this.heldBytes += data.length;
    if (start === 0) datagram.first = packet.bytes.subarray(0, packet.totalLength);

    if (datagram.totalLength === undefined || datagram.received !== datagram.totalLength || datagram.first === undefined) return undefined;
    return this.assemble(datagram);
  }

  private assemble(datagram: Datagram): Uint8Array {
    const first = datagram.first!;
    const headerLength = (first[0]! & 0x0f) * 4;
    const total = headerLength + datagram.totalLength!;
    const out = new Uint8Array(total);
    out.set(first.subarray(0, headerLength));
    for (const f of datagram.fragments) out.set(f.data, headerLength + f.start);
    out[2] = total >>> 8;
    out[3] = total & 0xff;
    out[6] &= 0x40; // keep DF, clear MF and the offset
    out[7] = 0;
    out[10] = 0;
    out[11] = 0;
    const checksum = internetChecksum(out, 0, headerLength);
    out[10] = checksum >>> 8;
    out[11] = checksum & 0xff;
    this.free(datagram);
    return out;
  }

  private reject(datagram: Datagram, reason: string): undefined {
    this.counters.drop(reason);
    this.poison(datagram);
    return undefined;
  }

  private poison(datagram: Datagram | undefined): void {
    if (!datagram || datagram.poisoned) return;
    this.heldBytes -= datagram.received;
    datagram.fragments = [];
    datagram.received = 0;
    datagram.first = undefined;
    datagram.poisoned = true;
  }

  private free(datagram: Datagram): void {
    datagram.timer.cancel();
    this.heldBytes -= datagram.received;
    this.datagrams.delete(datagram.key);
  }

  /** Drop the oldest datagrams until `bytes` more fit (or the count limit allows one more). */
  private makeRoom(bytes: number, keep?: Datagram): void {
    for (const d of this.datagrams.values()) {
      const overCount = keep === undefined && this.datagrams.size >= this.options.ipReassemblyMaxDatagrams;
      const overBytes = this.heldBytes + bytes > this.options.ipReassemblyMaxBytes;
      if (!overCount && !overBytes) return;
      if (d === keep) continue;
      if (!d.poisoned) this.counters.drop('reassembly-evicted');
      this.free(d);
    }
  }

  private expire(key: string): void {
    const datagram = this.datagrams.get(key);
    if (!datagram) return;
    const first = datagram.first;
    const poisoned = datagram.poisoned;
    this.free(datagram);
    if (poisoned) return;
    this.counters.drop('reassembly-timeout');
    if (this.options.ipReassemblyTimeExceeded) this.timedOut(first);
  }
}
