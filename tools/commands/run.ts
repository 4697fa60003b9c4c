import { openNode, untilInterrupted, type Values } from '../node.js';
import { startServices } from '../services.js';

/** `spinet run`: bring the board up, start the services, print state; Ctrl-C shuts down cleanly. */
export async function run(values: Values): Promise<number> {
  const node = await openNode(values, (m) => console.error(m));
  try {
    const services = await startServices(node.stack, node.net, (values.serve as string[] | undefined) ?? []);
    for (const s of services.describe()) console.error(`serving ${s}`);
    console.error(`up: ${node.iface.describe()} — Ctrl-C to stop`);
    const signal = await untilInterrupted();
    console.error(`\n${signal}: shutting down`);
    // The tables as they were when the user stopped: the listeners and connections still in them.
    console.error(node.stack.formatTables());
    await services.close();
  } finally {
    await node.close();
  }
  return 0;
}
