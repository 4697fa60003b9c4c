import type { Stack } from '../../stack/stack.js';
import { createDgram, type UdpSocket } from '../../socket/dgram.js';

/**
 * The classic small UDP services: echo (RFC 862), discard (RFC 863) and chargen (RFC 864).
 * Each is one bound socket; `close()` releases it.
 */
export type UdpServiceName = 'echo' | 'discard' | 'chargen';

/** RFC 864: a rotating 72-character line of the 95 printable ASCII characters. */
export function chargenLine(offset: number): string {
  let line = '';
  for (let i = 0; i < 72; i++) line += String.fromCharCode(32 + ((offset + i) % 95));
  return line + '\r\n';
}

/**
 * Source ports a service does not answer. 0: RFC 768 — the sender expects no reply. The small
 * services' own ports: a datagram spoofed "from" one service to another (echo ↔ chargen, echo ↔
 * echo on two hosts) would make them answer each other for ever — CERT CA-1996-01, CVE-1999-0103;
 * BSD inetd refuses these ports the same way.
 */
const UNANSWERED_PORTS: ReadonlySet<number> = new Set([0, 7, 9, 13, 19, 37]);

export function isAnswerable(port: number): boolean {
  return !UNANSWERED_PORTS.has(port);
}

export function startUdpService(stack: Stack, service: UdpServiceName, port: number): Promise<UdpSocket> {
  const socket = createDgram(stack.udp).createSocket();
  let chargenOffset = 0;
  socket.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => {
    if (!isAnswerable(rinfo.port)) return;
    if (service === 'echo') socket.send(msg, rinfo.port, rinfo.address);
    else if (service === 'chargen') {
      // RFC 864: answer each datagram with a random-length (here: one line) datagram of characters.
      socket.send(Buffer.from(chargenLine(chargenOffset++)), rinfo.port, rinfo.address);
    }
  });
  // A send to an unreachable peer must not take the service down.
  socket.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
