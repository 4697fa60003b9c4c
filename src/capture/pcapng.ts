import type { CaptureSink, CapturedFrame } from './capture.js';

/**
 * A pcapng writer (IETF draft-ietf-opsawg-pcapng, "PCAP Next Generation Capture File Format"):
 * one Section Header Block, one Interface Description Block per NIC (link type 1, Ethernet, with
 * microsecond timestamps), and an Enhanced Packet Block per frame whose epb_flags say whether it
 * was received or sent. Written little-endian; readers learn that from the byte-order magic.
 */

/** Where the bytes go: a file (file-sink.ts), a socket, an array in a test. */
export interface ByteSink {
  write(bytes: Uint8Array): void;
  flush?(): Promise<void>;
  close?(): Promise<void>;
}

/** Block types (§4.1, §4.2, §4.3). */
const SECTION_HEADER_BLOCK = 0x0a0d0d0a;
const INTERFACE_DESCRIPTION_BLOCK = 0x00000001;
const ENHANCED_PACKET_BLOCK = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** Option codes. */
const OPT_ENDOFOPT = 0;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;

/** LINKTYPE_ETHERNET (tcpdump.org link-layer header types). */
export const LINKTYPE_ETHERNET = 1;
/** if_tsresol 6: timestamps count 10^-6 s. */
const TSRESOL_MICROSECONDS = 6;
/** epb_flags bits 0–1: inbound/outbound (§4.3.1). */
const EPB_INBOUND = 0b01;
const EPB_OUTBOUND = 0b10;
/** No limit we would ever reach: a frame is at most 1514 bytes, jumbo 9014. */
const SNAPLEN = 0x40000;

const encoder = new TextEncoder();

const pad4 = (n: number): number => (n + 3) & ~3;

/** Options area: each option is code, length, value padded to 32 bits; ends with opt_endofopt. */
function encodeOptions(options: readonly [code: number, value: Uint8Array][]): Uint8Array {
  if (options.length === 0) return new Uint8Array(0);
  const size = options.reduce((n, [, v]) => n + 4 + pad4(v.length), 0) + 4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const [code, value] of options) {
    view.setUint16(at, code, true);
    view.setUint16(at + 2, value.length, true);
    out.set(value, at + 4);
    at += 4 + pad4(value.length);
  }
  view.setUint16(at, OPT_ENDOFOPT, true);
  view.setUint16(at + 2, 0, true);
  return out;
}

/** Frame a block: type, total length, body, options, total length again. */
function block(type: number, body: Uint8Array, options: Uint8Array): Uint8Array {
  const total = 12 + pad4(body.length) + options.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, type, true);
  view.setUint32(4, total, true);
  out.set(body, 8);
  out.set(options, 8 + pad4(body.length));
  view.setUint32(total - 4, total, true);
  return out;
}

export class PcapngWriter implements CaptureSink {
  private readonly interfaces = new Map<string, number>();
  private closed = false;
  framesWritten = 0;

  constructor(
    private readonly out: ByteSink,
    options: { application?: string } = {},
  ) {
    const body = new Uint8Array(16);
    const view = new DataView(body.buffer);
    view.setUint32(0, BYTE_ORDER_MAGIC, true);
    view.setUint16(4, 1, true); // major version
    view.setUint16(6, 0, true); // minor version
    // Section length -1: not specified (we stream).
    view.setBigInt64(8, -1n, true);
    const shbOptions = encodeOptions([[SHB_USERAPPL, encoder.encode(options.application ?? 'spinet')]]);
    this.out.write(block(SECTION_HEADER_BLOCK, body, shbOptions));
  }

  /** Declare an interface (done automatically for a new name on its first frame); returns its id. */
  addInterface(name: string, linkType = LINKTYPE_ETHERNET): number {
    const known = this.interfaces.get(name);
    if (known !== undefined) return known;
    const id = this.interfaces.size;
    this.interfaces.set(name, id);
    const body = new Uint8Array(8);
    const view = new DataView(body.buffer);
    view.setUint16(0, linkType, true);
    view.setUint16(2, 0, true); // reserved
    view.setUint32(4, SNAPLEN, true);
    const idbOptions = encodeOptions([
      [IF_NAME, encoder.encode(name)],
      [IF_TSRESOL, Uint8Array.of(TSRESOL_MICROSECONDS)],
    ]);
    this.out.write(block(INTERFACE_DESCRIPTION_BLOCK, body, idbOptions));
    return id;
  }

  record(frame: CapturedFrame): void {
    if (this.closed) return;
    const id = this.addInterface(frame.interfaceName);
    const micros = Math.round(frame.timestampMs * 1000);
    const length = frame.bytes.length;
    const body = new Uint8Array(20 + length);
    const view = new DataView(body.buffer);
    view.setUint32(0, id, true);
    view.setUint32(4, Math.floor(micros / 0x1_0000_0000), true);
    view.setUint32(8, micros >>> 0, true);
    view.setUint32(12, length, true); // captured length
    view.setUint32(16, length, true); // original length
    body.set(frame.bytes, 20);
    const flags = new Uint8Array(4);
    new DataView(flags.buffer).setUint32(0, frame.direction === 'in' ? EPB_INBOUND : EPB_OUTBOUND, true);
    this.out.write(block(ENHANCED_PACKET_BLOCK, body, encodeOptions([[EPB_FLAGS, flags]])));
    this.framesWritten++;
  }

  async flush(): Promise<void> {
    await this.out.flush?.();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.out.close?.();
  }
}
