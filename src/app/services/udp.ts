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

export function startUdpService(stack: Stack, service: UdpServiceName, port: number): Promise<UdpSocket> {
  const socket = createDgram(stack.udp).createSocket();
  let chargenOffset = 0;
  socket.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => {
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
