import { openNode, untilInterrupted, type Values } from '../node.js';
import { UsageError } from '../options.js';
import { formatIpv4, tryParseIpv4 } from '../../src/wire/address.js';

/** ping(8)'s words for the errors the host itself reports. */
const UNREACHABLE: Readonly<Record<string, string>> = { EHOSTUNREACH: 'Destination Host Unreachable', ENETUNREACH: 'Destination Net Unreachable' };
import type { PingResult } from '../../src/ip/icmp.js';

/**
 * `spinet ping HOST`: echo requests from the board, like ping(8): one every interval whether or not
 * the last was answered, replies printed as they come, a summary at the end (or on Ctrl-C). A name
 * is resolved first through spinet's resolver; each request waits the stack's ping timeout (longer
 * than ARP's give-up time, so an unreachable neighbour reads EHOSTUNREACH, not a bare timeout).
 */
export async function ping(values: Values, positionals: string[]): Promise<number> {
  const host = positionals[0];
  if (!host) throw new UsageError('which host? spinet ping HOST');
  const count = Number(values.count ?? 4);
  const size = Number(values.size ?? 56);
  const interval = Number(values.interval ?? 1);
  if (!Number.isInteger(count) || count < 1) throw new UsageError('--count must be a positive integer');
  if (!Number.isInteger(size) || size < 0 || size > 65507) throw new UsageError('--size must be 0..65507');
  if (!Number.isFinite(interval) || interval < 0) throw new UsageError('--interval must be a number of seconds ≥ 0');
  const intervalMs = interval * 1000;
  const node = await openNode(values, (m) => console.error(m));
  let interrupted = false;
  const interruption = untilInterrupted().then(() => {
    interrupted = true;
  });
  const rtts: number[] = [];
  const replies: ({ seq: number; bytes: number; from: string; ttl: number; timeMs: number } | { seq: number; error: string })[] = [];
  const json = values.json === true;
  let errors = 0;
  let sent = 0;
  let resolved: string | undefined;
  const source = node.iface.addresses[0] ? formatIpv4(node.iface.addresses[0].address) : '0.0.0.0';
  try {
    let address = host;
    if (tryParseIpv4(host) === undefined) {
      try {
        address = (await node.dns.lookup(host, { family: 4 })).address;
      } catch (error) {
        const e = error as Error & { code?: string };
        console.error(`spinet ping: ${host}: ${e.code ?? e.message}`);
        if (json) console.log(JSON.stringify({ host, error: e.code ?? e.message }));
        return 1;
      }
    }
    resolved = address;
    if (!json) console.log(`PING ${host}${address !== host ? ` (${address})` : ''}: ${size} data bytes`);
    const outstanding: Promise<void>[] = [];
    for (let seq = 1; seq <= count && !interrupted; seq++) {
      sent++;
      outstanding.push(
        node.stack.ping(address, { size }).then(
          (reply: PingResult) => {
            if (interrupted) return;
            rtts.push(reply.rttMs);
            replies.push({ seq, bytes: reply.bytes, from: reply.from, ttl: reply.ttl, timeMs: reply.rttMs });
            if (!json) console.log(`${reply.bytes} bytes from ${reply.from}: icmp_seq=${seq} ttl=${reply.ttl} time=${reply.rttMs.toFixed(3)} ms`);
          },
          (error: Error & { code?: string }) => {
            if (interrupted) return;
            const code = error.code ?? error.message;
            if (code !== 'ETIMEDOUT') errors++;
            replies.push({ seq, error: code });
            if (json) return;
            // As iputils ping prints the errors the host itself reports (ARP gave up: "From <our
            // address> … Destination Host Unreachable"); a bare timeout, like its, prints nothing.
            const unreachable = UNREACHABLE[code];
            if (unreachable) console.log(`From ${source} icmp_seq=${seq} ${unreachable}`);
            else if (code !== 'ETIMEDOUT') console.log(`From ${source} icmp_seq=${seq} ${code}`);
          },
        ),
      );
      if (seq < count) await Promise.race([new Promise((r) => node.clock.schedule(intervalMs, () => r(undefined))), interruption]);
    }
    // The last replies (or their timeouts), unless Ctrl-C cuts the wait short as in ping(8).
    await Promise.race([Promise.all(outstanding), interruption]);
  } finally {
    await node.close();
  }
  const loss = sent ? ((sent - rtts.length) / sent) * 100 : 0;
  if (json) {
    console.log(JSON.stringify({ host, address: resolved ?? host, transmitted: sent, received: rtts.length, errors, lossPercent: loss, replies: replies.sort((a, b) => a.seq - b.seq) }));
    return rtts.length ? 0 : 1;
  }
  console.log(`--- ${host} ping statistics ---`);
  console.log(`${sent} packets transmitted, ${rtts.length} received, ${errors ? `+${errors} errors, ` : ''}${loss.toFixed(0)}% packet loss`);
  if (rtts.length) {
    const min = Math.min(...rtts);
    const max = Math.max(...rtts);
    const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
    console.log(`rtt min/avg/max = ${min.toFixed(3)}/${avg.toFixed(3)}/${max.toFixed(3)} ms`);
  }
  return rtts.length ? 0 : 1;
}
