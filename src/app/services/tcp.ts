import type { Net, Server, Socket } from '../../socket/net.js';
import { chargenLine } from './udp.js';

/**
 * TCP echo (RFC 862), discard (RFC 863) and chargen (RFC 864) over a Node net-compatible API —
 * spinet's own (`stack.net`) or node:net itself, which is how the tests compare the two.
 */
export type TcpServiceName = 'echo' | 'discard' | 'chargen';

function serve(service: TcpServiceName, socket: Socket): void {
  socket.on('error', () => socket.destroy());
  if (service === 'echo') {
    // pipe() gives backpressure both ways: a slow reader stalls the echo, not our memory.
    socket.pipe(socket);
    return;
  }
  if (service === 'discard') {
    socket.resume();
    return;
  }
  // chargen: write lines while the peer keeps reading; stop when it closes.
  let offset = 0;
  socket.resume();
  const pump = () => {
    while (!socket.destroyed && socket.writable) {
      if (!socket.write(chargenLine(offset++))) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  socket.on('end', () => socket.end());
  pump();
}

export function startTcpService(net: Net, service: TcpServiceName, port: number): Promise<Server> {
  const server = net.createServer((socket) => serve(service, socket));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
