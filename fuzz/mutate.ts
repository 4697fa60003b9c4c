import fc from 'fast-check';

/**
 * Structure-aware inputs: a valid encoding from a protocol's own arbitraries, then (most of the
 * time) a few edits — a flipped bit, a byte set to a boundary value, a cut, bytes inserted,
 * deleted or appended — so most inputs get past the first length checks and reach the deep
 * branches. Plain random bytes are mixed in too.
 */
export type Edit =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'cut'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'append'; readonly bytes: Uint8Array };

/** Values at the edges of 8- and 16-bit fields, where length and offset checks live. */
export const boundaryByte = fc.oneof(fc.constantFrom(0x00, 0x01, 0x02, 0x04, 0x05, 0x0f, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff), fc.integer({ min: 0, max: 255 }));

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: boundaryByte }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
);

export function applyEdits(base: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let bytes = base.slice();
  for (const e of edits) {
    const n = bytes.length;
    switch (e.kind) {
      case 'flip':
        if (n > 0) bytes[e.at % n] ^= 1 << e.bit;
        break;
      case 'set':
        if (n > 0) bytes[e.at % n] = e.value;
        break;
      case 'cut':
        bytes = bytes.slice(0, e.at % (n + 1));
        break;
      case 'insert': {
        const at = e.at % (n + 1);
        const out = new Uint8Array(n + e.bytes.length);
        out.set(bytes.subarray(0, at));
        out.set(e.bytes, at);
        out.set(bytes.subarray(at), at + e.bytes.length);
        bytes = out;
        break;
      }
      case 'delete': {
        const at = e.at % (n + 1);
        const out = new Uint8Array(n - Math.min(e.count, n - at));
        out.set(bytes.subarray(0, at));
        out.set(bytes.subarray(at + e.count), at);
        bytes = out;
        break;
      }
      case 'append': {
        const out = new Uint8Array(n + e.bytes.length);
        out.set(bytes);
        out.set(e.bytes, n);
        bytes = out;
        break;
      }
    }
  }
  return bytes;
}

/** Valid encodings, edited encodings and random bytes, 1 : 4 : 1. */
export function mutated(valid: fc.Arbitrary<Uint8Array>, maxRandomLength = 1600): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: valid },
    { weight: 4, arbitrary: fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([base, edits]) => applyEdits(base, edits)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRandomLength }) },
  );
}

export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** An IPv4 address, often from the few that matter (ours, a peer, special classes). */
export const ipv4Address = fc.oneof(u32, fc.constantFrom(0, 0x7f000001, 0xffffffff, 0xe0000001, 0xf0000001, 0x0a000001, 0x0a000002, 0x0a0000ff));
export const macAddress = fc.oneof(fc.uint8Array({ minLength: 6, maxLength: 6 }), fc.constantFrom(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), Uint8Array.of(1, 0, 0x5e, 0, 0, 1)));
