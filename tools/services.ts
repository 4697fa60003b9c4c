/**
 * `--serve NAME:PORT`: the small services a board can run. UDP services come from
 * src/app/services/udp.ts; TCP services from src/app/services/tcp.ts once the stack has TCP.
 */
import type { Stack } from '../src/stack/stack.js';
import type { UdpSocket } from '../src/socket/dgram.js';
import type { Net, Server } from '../src/socket/net.js';
import { startUdpService, type UdpServiceName } from '../src/app/services/udp.js';
import { startTcpService, type TcpServiceName } from '../src/app/services/tcp.js';
import { startStatusPage } from '../src/app/services/status-page.js';
import { UsageError } from './options.js';

const KNOWN = new Set(['echo', 'discard', 'chargen', 'http']);

export interface RunningServices {
  describe(): string[];
  close(): Promise<void>;
}

export function parseServiceSpec(spec: string): { name: string; port: number } {
  const [name, portText] = spec.split(':');
  const port = Number(portText);
  if (!name || !KNOWN.has(name) || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`--serve ${spec}: expected NAME:PORT with NAME one of echo, discard, chargen, http`);
  }
  return { name, port };
}

export async function startServices(stack: Stack, net: Net, specs: readonly string[]): Promise<RunningServices> {
  const udp: UdpSocket[] = [];
  const tcp: Server[] = [];
  const described: string[] = [];
  for (const spec of specs) {
    const { name, port } = parseServiceSpec(spec);
    if (name === 'http') {
      tcp.push(await startStatusPage(net, port, stack));
      described.push(`http status page on TCP port ${port}`);
    } else {
      udp.push(await startUdpService(stack, name as UdpServiceName, port));
      tcp.push(await startTcpService(net, name as TcpServiceName, port));
      described.push(`${name} on UDP and TCP port ${port}`);
    }
  }
  return {
    describe: () => described,
    close: async () => {
      for (const s of udp) s.close();
      await Promise.all(tcp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}
