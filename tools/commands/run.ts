import { openNode, untilInterrupted, type Values } from '../node.js';
import { startServices } from '../services.js';
import { consoleSetup } from '../console/index.js';

/** `spinet run`: bring the board up, start the services, print state; Ctrl-C shuts down cleanly. */
export async function run(values: Values): Promise<number> {
  const operatorConsole = consoleSetup(values.console);
  // The frame log is run's output: stdout (JSON lines alone with --log json); progress on stderr.
  const node = await openNode(values, (m) => console.error(m), { ...operatorConsole.extras, logToStdout: true });
  const server = await operatorConsole.start(node).catch(async (error: unknown) => {
    await node.close();
    throw error;
  });
  try {
    const services = await startServices(node.stack, node.net, (values.serve as string[] | undefined) ?? []);
    for (const s of services.describe()) console.error(`serving ${s}`);
    if (server) console.error(`console: ${server.url} (this computer only)`);
    // Listening for Ctrl-C before saying so: a signal right after the line still shuts down cleanly.
    const interrupted = untilInterrupted();
    console.error(`up: ${node.iface.describe()} — Ctrl-C to stop`);
    const signal = await interrupted;
    console.error(`\n${signal}: shutting down`);
    // The tables as they were when the user stopped: the listeners and connections still in them —
    // on stdout (as one JSON object with --json or beside a --log json stream), unless stdout
    // carries the pcapng stream (--pcap -).
    const out = values.pcap === '-' ? console.error : console.log;
    out(values.json === true || values.log === 'json' ? JSON.stringify(node.stats()) : node.stack.formatTables());
    await services.close();
  } finally {
    await server?.close();
    await node.close();
  }
  return 0;
}
