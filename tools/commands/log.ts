import { closeSync, openSync } from 'node:fs';
import { openNode, untilInterrupted, type Values } from '../node.js';
import { startServices } from '../services.js';
import { parseFilter, UsageError } from '../options.js';
import type { CaptureSink } from '../../src/capture/capture.js';
import { FilterSink } from '../../src/capture/sinks.js';
import { TextLogSink } from '../../src/capture/text-log.js';
import { PcapngWriter } from '../../src/capture/pcapng.js';
import { openPcapngFile, StreamSink } from '../../src/capture/file-sink.js';

function parseCount(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`-c ${String(value)}: a number of frames, 1 or more`);
  return count;
}

/**
 * `spinet log [FILTER]`: every frame that crosses the board's link (for sim and serial boards, the
 * serial bridge), live, one decoded line each like tcpdump — or pcapng with -w (to stdout with
 * `-w -`, for `| wireshark -k -i -`). The stack runs as with `spinet run` (address, services),
 * so the board answers ARP and ping while it is watched.
 */
export async function log(values: Values, positionals: string[]): Promise<number> {
  const { expression, predicate } = parseFilter(positionals);
  const count = parseCount(values.count);
  const write = typeof values.write === 'string' ? values.write : undefined;
  if (write && write !== '-') {
    try {
      closeSync(openSync(write, 'w'));
    } catch (error) {
      throw Object.assign(new Error(`cannot write ${write} (${(error as Error).message.replace(/^[A-Z]+: /, '').replace(/, open .*$/, '')})`), { code: (error as NodeJS.ErrnoException).code ?? 'EIO' });
    }
  }
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const out: CaptureSink[] = [];
  if (write === '-') out.push(new PcapngWriter(new StreamSink(process.stdout, () => stop('the reader closed the pipe'))));
  else if (write) out.push(openPcapngFile(write));
  else {
    process.stdout.on('error', () => stop('stdout closed'));
    out.push(new TextLogSink((line) => process.stdout.write(line + '\n'), { verbose: values.verbose === true, hex: values.hex === true }));
  }
  const frames = new FilterSink(predicate, out, { ...(count !== undefined ? { limit: count } : {}), onLimit: () => stop(`${count} frames`) });

  console.error(
    `capturing every frame from the board's start, link-type EN10MB (Ethernet)${expression ? `, filter "${expression}"` : ''}` +
      `${count !== undefined ? `, ${count} frames` : ''}${write ? `, pcapng to ${write === '-' ? 'stdout' : write}` : ''} — Ctrl-C to stop`,
  );
  const node = await openNode({ ...values, log: 'none', pcap: undefined }, (m) => console.error(m), { sinks: [frames], promiscuous: values.promisc === true });
  try {
    const services = await startServices(node.stack, node.net, (values.serve as string[] | undefined) ?? []);
    for (const s of services.describe()) console.error(`serving ${s}`);
    console.error(`up: ${node.iface.describe()} on ${node.nic.name} (${node.board.description})`);
    await untilInterrupted(stopped);
    await frames.flush();
    console.error(`${frames.matched} frame${frames.matched === 1 ? '' : 's'} captured`);
    await services.close();
  } finally {
    await node.close();
  }
  return 0;
}
