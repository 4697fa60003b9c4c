// Minimal types for dns-packet 5.x (it ships none). Used by tests as an independent codec to
// cross-check ours; the resolver itself does not depend on it.
declare module 'dns-packet' {
  export interface Question {
    type: string;
    name: string;
    class?: string;
  }
  export interface Answer {
    type: string;
    name: string;
    class?: string;
    ttl?: number;
    flush?: boolean;
    data?: unknown;
  }
  export interface Packet {
    id?: number;
    type?: 'query' | 'response';
    flags?: number;
    rcode?: string;
    questions?: Question[];
    answers?: Answer[];
    authorities?: Answer[];
    additionals?: Answer[];
  }
  export function encode(packet: Packet, buf?: Buffer, offset?: number): Buffer;
  export function decode(buf: Uint8Array, offset?: number): Packet;
  export const RECURSION_DESIRED: number;
  export const AUTHORITATIVE_ANSWER: number;
  export const TRUNCATED_RESPONSE: number;
  const dnsPacket: {
    encode: typeof encode;
    decode: typeof decode;
    RECURSION_DESIRED: number;
    AUTHORITATIVE_ANSWER: number;
    TRUNCATED_RESPONSE: number;
  };
  export default dnsPacket;
}
