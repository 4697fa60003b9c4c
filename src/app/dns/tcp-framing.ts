import type { Clock } from '../../time/clock.js';
import { formatIpv4 } from '../../wire/address.js';
import type { DnsServerAddress, TcpQuery } from './resolver.js';
import { MAX_TCP_MESSAGE } from './wire.js';

/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766 §8): each message is preceded by a two-octet length.
 * `frameDnsMessage` and `DnsStreamDeframer` do the framing; `createTcpQuery` turns anything
 * net.Socket-shaped into the resolver's `tcpQuery` hook.
 */

export function frameDnsMessage(message: Uint8Array): Uint8Array {
  if (message.length > MAX_TCP_MESSAGE) {
    throw Object.assign(new RangeError(`DNS message of ${message.length} octets exceeds 65535`), { code: 'EMSGSIZE' });
  }
  const out = new Uint8Array(message.length + 2);
  out[0] = message.length >>> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/** Accumulates stream chunks (split or coalesced anyhow) and yields whole messages. */
export class DnsStreamDeframer {
  /** Bytes received and not yet framed: `buffer[0, length)`; grown by doubling, never re-copied whole per chunk. */
  private buffer = new Uint8Array(0);
  private length = 0;

  /** Feed a chunk; returns the messages it completed, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.length + chunk.length > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.length + chunk.length, this.buffer.length * 2, 512));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.length;
    const messages: Uint8Array[] = [];
    let p = 0;
    while (this.length - p >= 2) {
      const size = (this.buffer[p]! << 8) | this.buffer[p + 1]!;
      if (this.length - p - 2 < size) break;
      messages.push(this.buffer.slice(p + 2, p + 2 + size));
      p += 2 + size;
    }
    if (p > 0) {
      this.buffer.copyWithin(0, p, this.length);
      this.length -= p;
    }
    return messages;
  }

  /** Octets of an incomplete message still buffered. */
  get pendingBytes(): number {
    return this.length;
  }
}

/** The subset of net.Socket (and the stack's TCP socket) that a DNS-over-TCP query needs. */
export interface StreamSocketLike {
  write(data: Uint8Array): unknown;
  end(): unknown;
  destroy(): unknown;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

/** `net.connect(port, host)` or the stack's equivalent; writes before 'connect' must be queued (net does). */
export type StreamConnect = (port: number, host: string) => StreamSocketLike;

/**
 * A `tcpQuery` over a stream connection: one connection per query, closed after the reply
 * (RFC 7766 §6.2.1 permits either). The resolver applies its own timeout; `clock`/`timeoutMs`
 * additionally make sure the connection itself is torn down.
 */
export function createTcpQuery(connect: StreamConnect, options: { clock?: Clock; timeoutMs?: number } = {}): TcpQuery {
  return (server: DnsServerAddress, query: Uint8Array) =>
    new Promise<Uint8Array>((resolve, reject) => {
      const socket = connect(server.port, formatIpv4(server.address));
      const deframer = new DnsStreamDeframer();
      let done = false;
      const finish = (error: Error | undefined, reply?: Uint8Array): void => {
        if (done) return;
        done = true;
        timer?.cancel();
        socket.destroy();
        if (error) reject(error);
        else resolve(reply!);
      };
      const timer =
        options.clock && options.timeoutMs !== undefined
          ? options.clock.schedule(options.timeoutMs, () => finish(Object.assign(new Error('DNS over TCP timed out'), { code: 'ETIMEOUT' })))
          : undefined;
      socket.on('data', (chunk) => {
        const [reply] = deframer.push(chunk);
        if (reply) finish(undefined, reply);
      });
      socket.on('error', (error) => finish(error));
      socket.on('close', () => finish(Object.assign(new Error('DNS over TCP: connection closed before a reply'), { code: 'ECONNRESET' })));
      socket.write(frameDnsMessage(query));
    });
}
