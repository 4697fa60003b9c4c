import type { Clock, TimerHandle } from '../time/clock.js';
import { randomBelow, type Random } from '../time/random.js';
import { formatIpv4, IPV4_BROADCAST, isMulticastIpv4, type Ipv4Address } from '../wire/address.js';
import { IcmpPacket, IcmpRepr, isIcmpErrorType, parseQuotedDatagram } from '../wire/icmp.js';
import { IpProtocol } from '../wire/ipv4.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import type { Containment } from '../stats/containment.js';
import { systemError, type SystemError } from './errno.js';
import type { IcmpErrorReporter } from './ipv4.js';
import type { IcmpErrorInfo, IcmpErrorKind, IpReceiveInfo, IpSender, TransportProtocol } from './types.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';

/**
 * ICMPv4 (RFC 792, RFC 1122 §3.2.2): echo reply, the ping API, errors we send (rate-limited,
 * never about errors, broadcasts or non-first fragments) and errors we receive (routed to the
 * transport that sent the quoted datagram).
 */

export interface PingOptions {
  /** ICMP data bytes (default 56, like iputils ping). */
  readonly size?: number;
  readonly timeoutMs?: number;
  readonly ttl?: number;
}

export interface PingResult {
  readonly rttMs: number;
  readonly ttl: number;
  /** ICMP message length of the reply (header + data), as ping prints it. */
  readonly bytes: number;
  readonly from: string;
  readonly sequence: number;
}

interface PendingPing {
  readonly destination: Ipv4Address;
  readonly nextHop: Ipv4Address | undefined;
  readonly sentAt: number;
  readonly timer: TimerHandle;
  resolve(result: PingResult): void;
  reject(error: SystemError): void;
}

export function icmpErrorKind(type: number, code: number): IcmpErrorKind {
  if (type === 11) return 'time-exceeded';
  if (type === 12) return 'parameter-problem';
  switch (code) {
    case 0:
      return 'net-unreachable';
    case 1:
      return 'host-unreachable';
    case 2:
      return 'protocol-unreachable';
    case 3:
      return 'port-unreachable';
    case 4:
      return 'fragmentation-needed';
    default:
      return 'other-unreachable';
  }
}

export class IcmpLayer implements TransportProtocol, IcmpErrorReporter {
  readonly protocol = IpProtocol.ICMP;
  private tokens: number;
  private lastRefill: number;
  private readonly identifier: number;
  private sequence = 0;
  private readonly pings = new Map<number, PendingPing>();

  constructor(
    private readonly clock: Clock,
    random: Random,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    private readonly ip: IpSender,
    private readonly transportFor: (protocol: number) => TransportProtocol | undefined,
    private readonly containment: Containment,
    private readonly trace: TraceHook = NO_TRACE,
  ) {
    this.tokens = options.icmpErrorBurst;
    this.lastRefill = clock.now();
    this.identifier = randomBelow(random, 0x10000);
  }

  // ------------------------------------------------------------------ input

  receive(info: IpReceiveInfo, payload: Uint8Array): 'delivered' | 'dropped' {
    const c = this.counters;
    c.received++;
    const packet = IcmpPacket.check(payload);
    if (!packet.ok) {
      c.drop(packet.reason);
      return 'dropped';
    }
    const repr = IcmpRepr.parse(packet, this.options.verifyChecksums);
    if ('ok' in repr) {
      c.drop(repr.reason);
      return 'dropped';
    }
    switch (repr.type) {
      case 'echo-request': {
        // RFC 1122 §3.2.2.6 lets a host ignore broadcast echo requests; we do (smurf amplification).
        if (info.broadcastOrMulticast) {
          c.drop('echo-to-broadcast');
          return 'dropped';
        }
        const reply = new Uint8Array(payload.length);
        IcmpRepr.emit({ type: 'echo-reply', identifier: repr.identifier, sequence: repr.sequence, data: repr.data }, reply);
        this.trace.emit?.('icmp', 'in', `echo request id ${repr.identifier} seq ${repr.sequence} from ${formatIpv4(info.source)}: answered at once with an echo reply`);
        this.trace.emit?.('icmp', 'out', `echo reply id ${repr.identifier} seq ${repr.sequence} to ${formatIpv4(info.source)}, ${repr.data.length} data bytes echoed`);
        const sent = this.ip.send({ destination: info.source, source: info.destination, protocol: IpProtocol.ICMP, tos: info.tos }, reply);
        if (sent.ok) c.sent++;
        else c.drop(`echo-reply-${sent.code}`);
        return 'delivered';
      }
      case 'echo-reply':
        this.echoReply(info, repr.identifier, repr.sequence, payload.length);
        return 'delivered';
      case 'destination-unreachable':
      case 'time-exceeded':
      case 'parameter-problem':
        this.errorReceived(info, packet.type, repr.code, repr.type === 'destination-unreachable' ? repr.nextHopMtu : 0, repr.quote);
        return 'delivered';
      case 'other':
        c.drop(`type-${repr.rawType}`);
        return 'dropped';
    }
  }

  private errorReceived(info: IpReceiveInfo, type: number, code: number, nextHopMtu: number, quote: Uint8Array): void {
    const quoted = parseQuotedDatagram(quote);
    if ('ok' in quoted) {
      this.counters.drop(`quote-${quoted.reason}`);
      return;
    }
    const original = quoted.header;
    // Only errors about datagrams we sent are meaningful.
    if (!this.ip.isLocalAddress(original.source)) {
      this.counters.drop('error-not-about-us');
      return;
    }
    const kind = icmpErrorKind(type, code);
    if (original.protocol === IpProtocol.ICMP) {
      this.errorAboutEcho(kind, quoted.transportHeader);
      return;
    }
    const transport = this.transportFor(original.protocol);
    if (transport?.icmpError === undefined) {
      this.counters.drop('error-no-transport');
      return;
    }
    const error: IcmpErrorInfo = {
      kind,
      type,
      code,
      reporter: info.source,
      originalSource: original.source,
      originalDestination: original.destination,
      protocol: original.protocol,
      originalTransportHeader: quoted.transportHeader,
      nextHopMtu,
    };
    try {
      transport.icmpError(error);
    } catch (thrown) {
      this.counters.drop('transport-threw');
      this.containment.caught(`ICMP error delivery to protocol ${original.protocol}`, thrown);
    }
  }

  // ------------------------------------------------------------------ errors we send

  /** RFC 1122 §3.2.2: the cases where an ICMP error MUST NOT be sent, then the rate limit. */
  reportError(type: number, code: number, offending: Uint8Array, broadcastOrMulticast: boolean, nextHopMtu = 0): void {
    const c = this.counters;
    if (broadcastOrMulticast) {
      c.drop('no-error-for-broadcast');
      return;
    }
    if (offending.length < 20) return;
    const headerLength = (offending[0]! & 0x0f) * 4;
    const fragmentOffset = ((offending[6]! & 0x1f) << 8) | offending[7]!;
    if (fragmentOffset !== 0) {
      c.drop('no-error-for-fragment');
      return;
    }
    const source = ((offending[12]! << 24) | (offending[13]! << 16) | (offending[14]! << 8) | offending[15]!) >>> 0;
    if (source === 0 || source === IPV4_BROADCAST || isMulticastIpv4(source) || source >>> 24 === 127 || source >>> 28 === 0xf) {
      c.drop('no-error-for-bad-source');
      return;
    }
    if (offending[9] === IpProtocol.ICMP && (offending.length <= headerLength || isIcmpErrorType(offending[headerLength]!))) {
      c.drop('no-error-for-error');
      return;
    }
    if (!this.takeToken()) {
      c.drop('error-rate-limited');
      return;
    }
    const destination = ((offending[16]! << 24) | (offending[17]! << 16) | (offending[18]! << 8) | offending[19]!) >>> 0;
    const repr: IcmpRepr =
      type === 3
        ? { type: 'destination-unreachable', code, nextHopMtu, quote: offending }
        : type === 11
          ? { type: 'time-exceeded', code, quote: offending }
          : { type: 'parameter-problem', code, pointer: 0, quote: offending };
    const message = new Uint8Array(IcmpRepr.bufferLength(repr));
    IcmpRepr.emit(repr, message);
    this.trace.emit?.('icmp', 'out', `error type ${type} code ${code} to ${formatIpv4(source)}, quoting ${offending.length} bytes of the datagram it is about`);
    const sent = this.ip.send(
      { destination: source, source: this.ip.isLocalAddress(destination) ? destination : undefined, protocol: IpProtocol.ICMP },
      message,
    );
    if (sent.ok) c.sent++;
    else c.drop(`error-${sent.code}`);
  }

  /** Token bucket on the injected clock. */
  private takeToken(): boolean {
    const now = this.clock.now();
    const o = this.options;
    this.tokens = Math.min(o.icmpErrorBurst, this.tokens + ((now - this.lastRefill) * o.icmpErrorsPerSecond) / 1000);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  // ------------------------------------------------------------------ ping

  ping(destination: Ipv4Address, options: PingOptions = {}): Promise<PingResult> {
    const size = options.size ?? this.options.pingDefaultSize;
    const timeoutMs = options.timeoutMs ?? this.options.pingDefaultTimeoutMs;
    const target = formatIpv4(destination);
    return new Promise<PingResult>((resolve, reject) => {
      if (!Number.isInteger(size) || size < 0 || size > 65507) {
        reject(systemError('EINVAL', 'ping', target));
        return;
      }
      const sequence = (this.sequence = (this.sequence + 1) & 0xffff);
      const data = new Uint8Array(size);
      for (let i = 0; i < size; i++) data[i] = i & 0xff;
      const message = new Uint8Array(8 + size);
      IcmpRepr.emit({ type: 'echo-request', identifier: this.identifier, sequence, data }, message);
      const sentAt = this.clock.now();
      const nextHop = this.ip.route(destination)?.nextHop;
      const timer = this.clock.schedule(timeoutMs, () => {
        this.pings.delete(sequence);
        reject(systemError('ETIMEDOUT', 'ping', target));
      });
      this.pings.set(sequence, { destination, nextHop, sentAt, timer, resolve, reject });
      this.trace.emit?.('icmp', 'out', `ping: echo request id ${this.identifier} seq ${sequence} to ${target}, ${size} data bytes; waits ${timeoutMs} ms for the reply`);
      const sent = this.ip.send({ destination, protocol: IpProtocol.ICMP, ttl: options.ttl }, message);
      if (!sent.ok) {
        this.settle(sequence)?.reject(systemError(sent.code, 'ping', target));
        return;
      }
      this.counters.sent++;
    });
  }

  private settle(sequence: number): PendingPing | undefined {
    const pending = this.pings.get(sequence);
    if (pending === undefined) return undefined;
    this.pings.delete(sequence);
    pending.timer.cancel();
    return pending;
  }

  private echoReply(info: IpReceiveInfo, identifier: number, sequence: number, bytes: number): void {
    const pending = this.pings.get(sequence);
    if (identifier !== this.identifier || pending === undefined || (pending.destination !== info.source && !info.broadcastOrMulticast && pending.destination !== IPV4_BROADCAST)) {
      this.counters.drop('echo-reply-unexpected');
      return;
    }
    this.settle(sequence);
    this.trace.emit?.('icmp', 'in', `echo reply seq ${sequence} from ${formatIpv4(info.source)}: ping answered after ${(this.clock.now() - pending.sentAt).toFixed(1)} ms`);
    pending.resolve({ rttMs: this.clock.now() - pending.sentAt, ttl: info.ttl, bytes, from: formatIpv4(info.source), sequence });
  }

  private errorAboutEcho(kind: IcmpErrorKind, header: Uint8Array): void {
    if (header[0] !== 8) return;
    const identifier = (header[4]! << 8) | header[5]!;
    const sequence = (header[6]! << 8) | header[7]!;
    if (identifier !== this.identifier) return;
    const pending = this.settle(sequence);
    if (!pending) return;
    const code = kind === 'net-unreachable' ? 'ENETUNREACH' : kind === 'fragmentation-needed' ? 'EMSGSIZE' : 'EHOSTUNREACH';
    pending.reject(systemError(code, 'ping', formatIpv4(pending.destination)));
  }

  /** ARP gave up on `nextHop`: the pings that went through it cannot be answered. */
  neighbourUnreachable(nextHop: Ipv4Address): void {
    for (const [sequence, pending] of [...this.pings]) {
      if (pending.nextHop !== nextHop) continue;
      this.settle(sequence);
      pending.reject(systemError('EHOSTUNREACH', 'ping', formatIpv4(pending.destination)));
    }
  }
}
