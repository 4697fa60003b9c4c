/**
 * `--console PORT|off` for `spinet run` and `spinet start`: the recorder the console's frame log
 * and "follow a packet" read (a capture sink, so it must exist before the node opens), and the
 * server started once the node is up.
 */
import { RealClock } from '../../src/time/real-clock.js';
import { PacketTraceRecorder } from '../../src/capture/packet-trace.js';
import { UsageError, type OptionSpec } from '../options.js';
import type { NodeExtras, SpinetNode } from '../node.js';
import { startConsole, type ConsoleServer } from './server.js';

export const CONSOLE_OPTION: OptionSpec = {
  name: 'console',
  type: 'string',
  value: 'PORT',
  default: '0',
  help: 'serve the operator console on 127.0.0.1:PORT (0: a free port; the URL is printed), or off',
};

export interface ConsoleSetup {
  /** What openNode needs: the clock the recorder stamps with, and the recorder as a capture sink. */
  readonly extras: NodeExtras;
  /** Start the server on the opened node (undefined with --console off). */
  start(node: SpinetNode): Promise<ConsoleServer | undefined>;
}

export function consoleSetup(value: unknown): ConsoleSetup {
  const text = typeof value === 'string' ? value : '0';
  if (text === 'off') return { extras: {}, start: async () => undefined };
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--console ${text}: a port number (0 for any free port) or off`);
  const clock = new RealClock({ unref: true });
  const recorder = new PacketTraceRecorder(clock);
  return {
    extras: { clock, sinks: [recorder] },
    start: async (node) => {
      try {
        return await startConsole(node, recorder, { port });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`--console ${port}: 127.0.0.1:${port} is in use; pick another port, or 0 for any free one`);
        throw error;
      }
    },
  };
}
