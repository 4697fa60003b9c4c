import { createHmac } from 'node:crypto';
import type { Ipv4Address } from '../wire/address.js';
import type { Random } from '../time/random.js';
import { randomFill } from '../time/random.js';

/**
 * Keyed hashing of a connection's 4-tuple: the basis of RFC 6528 initial sequence numbers and of
 * SYN cookies. The secret is drawn once per Tcp instance from the injected Random.
 */
export class TupleHasher {
  private readonly secret: Uint8Array;
  private readonly input = new Uint8Array(20);

  constructor(random: Random) {
    this.secret = randomFill(random, new Uint8Array(16));
  }

  /** First 32 bits of HMAC-SHA-256(secret, tuple ‖ extra ‖ extra2). */
  hash(localAddress: Ipv4Address, localPort: number, remoteAddress: Ipv4Address, remotePort: number, extra = 0, extra2 = 0): number {
    const b = this.input;
    const v = new DataView(b.buffer);
    v.setUint32(0, localAddress >>> 0);
    v.setUint16(4, localPort);
    v.setUint32(6, remoteAddress >>> 0);
    v.setUint16(10, remotePort);
    v.setUint32(12, extra >>> 0);
    v.setUint32(16, extra2 >>> 0);
    const digest = createHmac('sha256', this.secret).update(b).digest();
    return digest.readUInt32BE(0);
  }

  /**
   * RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M is a
   * timer that ticks every 4 microseconds. `nowMs` is the injected clock.
   */
  initialSequenceNumber(localAddress: Ipv4Address, localPort: number, remoteAddress: Ipv4Address, remotePort: number, nowMs: number): number {
    const m = Math.floor(nowMs * 250);
    return (this.hash(localAddress, localPort, remoteAddress, remotePort) + m) >>> 0;
  }
}
