import { openNode, untilInterrupted, type Values } from '../node.js';
import { UsageError } from '../options.js';

/** `spinet ping HOST`: echo requests from the board, RTTs like ping(8), a summary at the end. */
export async function ping(values: Values, positionals: string[]): Promise<number> {
  const host = positionals[0];
  if (!host) throw new UsageError('which host? spinet ping HOST');
  const count = Number(values.count ?? 4);
  const size = Number(values.size ?? 56);
  const intervalMs = Number(values.interval ?? 1) * 1000;
  if (!Number.isInteger(count) || count < 1) throw new UsageError('--count must be a positive integer');
  if (!Number.isInteger(size) || size < 0 || size > 65507) throw new UsageError('--size must be 0..65507');
  const node = await openNode(values, (m) => console.error(m));
  let interrupted = false;
  void untilInterrupted().then(() => (interrupted = true));
  const rtts: number[] = [];
  let sent = 0;
  try {
    console.log(`PING ${host}: ${size} data bytes`);
    for (let seq = 1; seq <= count && !interrupted; seq++) {
      const started = node.clock.now();
      sent++;
      try {
        const reply = await node.stack.ping(host, { size, timeoutMs: 2000 });
        rtts.push(reply.rttMs);
        console.log(`${reply.bytes} bytes from ${reply.from}: icmp_seq=${seq} ttl=${reply.ttl} time=${reply.rttMs.toFixed(3)} ms`);
      } catch (error) {
        const e = error as Error & { code?: string };
        console.log(`from ${host}: icmp_seq=${seq} ${e.code ?? e.message}`);
      }
      const wait = intervalMs - (node.clock.now() - started);
      if (seq < count && wait > 0 && !interrupted) await new Promise((r) => node.clock.schedule(wait, () => r(undefined)));
    }
  } finally {
    await node.close();
  }
  const loss = sent ? ((sent - rtts.length) / sent) * 100 : 0;
  console.log(`--- ${host} ping statistics ---`);
  console.log(`${sent} packets transmitted, ${rtts.length} received, ${loss.toFixed(0)}% packet loss`);
  if (rtts.length) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    console.log(`rtt min/avg/max = ${min.toFixed(3)}/${avg.toFixed(3)}/${max.toFixed(3)} ms`);
  }
  return rtts.length ? 0 : 1;
}
