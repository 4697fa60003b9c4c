import { randomBytes } from 'node:crypto';

/**
 * Randomness is injected like time: ISNs, ephemeral ports, DNS ids and DHCP xids come from a
 * Random, so tests are seeded and repeatable while a live stack uses the OS's CSPRNG.
 */
export interface Random {
  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number;
}

/** Uniform integer in [0, n). */
export function randomBelow(random: Random, n: number): number {
  return Math.floor((random.u32() / 0x1_0000_0000) * n);
}

/** Uniform float in [0, 1). */
export function randomUnit(random: Random): number {
  return random.u32() / 0x1_0000_0000;
}

export function randomFill(random: Random, out: Uint8Array): Uint8Array {
  for (let i = 0; i < out.length; i += 4) {
    const v = random.u32();
    for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
  }
  return out;
}

/** sfc32, seeded: fast, good statistical quality, deterministic. For tests and simulations. */
export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
}

/** The OS CSPRNG, drawn in blocks. */
export class CryptoRandom implements Random {
  private pool = new Uint32Array(0);
  private index = 0;

  u32(): number {
    if (this.index >= this.pool.length) {
      const bytes = randomBytes(1024);
      this.pool = new Uint32Array(bytes.buffer, bytes.byteOffset, 256);
      this.index = 0;
    }
    return this.pool[this.index++]!;
  }
}
