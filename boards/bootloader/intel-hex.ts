/**
 * Intel HEX ↔ AVR program memory. Parsing is delegated to the `intel-hex` package (no types, so
 * its one function is typed here).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const intelHex = require('intel-hex') as {
  parse(data: string | Buffer, bufferSize?: number): { data: Buffer };
};

/** ATmega328P flash: 32 KiB. */
export const ATMEGA328P_FLASH_BYTES = 0x8000;

/** The image's bytes from address 0 up to its highest programmed byte (gaps are 0xFF). */
export function parseIntelHex(text: string | Buffer): Uint8Array {
  return new Uint8Array(intelHex.parse(text).data);
}

/** A program memory (avr8js `CPU.progMem`) holding `image`, erased (0xFFFF) elsewhere. */
export function programMemory(image: Uint8Array, flashBytes = ATMEGA328P_FLASH_BYTES): Uint16Array {
  if (image.length > flashBytes) throw new RangeError(`image of ${image.length} bytes exceeds ${flashBytes}-byte flash`);
  const bytes = new Uint8Array(flashBytes).fill(0xff);
  bytes.set(image);
  return new Uint16Array(bytes.buffer);
}

/** The flash as bytes (little-endian words, as the AVR stores them). */
export function flashBytes(flash: Uint16Array): Uint8Array {
  return new Uint8Array(flash.buffer, flash.byteOffset, flash.byteLength);
}
