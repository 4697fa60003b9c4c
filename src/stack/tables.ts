/** How `stack.formatTables()` prints the tables and the counters: as net-tools would. */
import type { LayerCountersSnapshot, NamedCounters } from '../stats/counters.js';
import type { SocketRow, StackTables } from '../stats/rows.js';

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `netstat -o`'s timer cell: "keepalive (7199.99s)", "off", or '' for a socket without timers (UDP). */
function formatTimer(s: SocketRow): string {
  if (s.timer === undefined) return '';
  if (s.timer === 'off') return 'off';
  return `${s.timer} (${((s.timerRemaining ?? 0) / 1000).toFixed(2)}s)`;
}

/** `netstat -an`; with a Timer column (`netstat -o`) when any socket reports a timer. */
function socketTable(sockets: readonly SocketRow[]): string {
  const withTimers = sockets.some((s) => s.timer !== undefined);
  const headers = ['Proto', 'Local Address', 'Foreign Address', 'State', 'Recv-Q', 'Send-Q'];
  if (withTimers) headers.push('Timer');
  return table(
    headers,
    sockets.map((s) => {
      const row = [
        s.protocol,
        `${s.localAddress}:${s.localPort}`,
        s.remoteAddress === undefined ? '*:*' : `${s.remoteAddress}:${s.remotePort ?? '*'}`,
        s.state ?? '',
        String(s.receiveQueue ?? 0),
        String(s.sendQueue ?? 0),
      ];
      if (withTimers) row.push(formatTimer(s));
      return row;
    }),
  );
}

/** Text like `ip addr`, `arp -a`, `route -n` and `netstat -an`. */
export function formatTables(t: StackTables): string {
  const name = (index: number) => t.interfaces.find((i) => i.index === index)?.name ?? (index === 0 ? 'lo' : `#${index}`);
  const parts = [
    'Interfaces',
    table(
      ['Idx', 'Name', 'MAC', 'MTU', 'Link', 'Addresses', 'RX', 'TX'],
      t.interfaces.map((i) => [String(i.index), i.name, i.mac, String(i.mtu), i.linkUp ? 'up' : 'down', i.addresses.join(' ') || '-', String(i.rxFrames), String(i.txFrames)]),
    ),
    '',
    'ARP cache',
    table(
      ['Address', 'HWaddress', 'State', 'Iface', 'Expires', 'Queued'],
      t.arp.map((e) => [e.address, e.mac ?? '(incomplete)', e.state, e.interfaceName, e.expiresInMs === undefined ? '-' : `${Math.round(e.expiresInMs / 1000)}s`, String(e.queued)]),
    ),
    '',
    'Routes',
    table(
      ['Destination', 'Gateway', 'Iface', 'Metric', 'Origin'],
      t.routes.map((r) => [`${r.destination}/${r.prefixLength}`, r.gateway ?? 'on-link', name(r.interfaceIndex), String(r.metric), r.origin]),
    ),
    '',
    'Sockets',
    socketTable(t.sockets),
  ];
  return parts.join('\n') + '\n';
}

/** `name value` for every non-zero counter, nested names joined with '.'. */
function nonZero(counters: NamedCounters, prefix = ''): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(counters)) {
    if (typeof value === 'number') {
      if (value !== 0) out.push(`${prefix}${name} ${value}`);
    } else out.push(...nonZero(value, `${prefix}${name}.`));
  }
  return out;
}

/**
 * `netstat -s`: per layer, frames or packets received and sent and what was dropped, by reason;
 * then each transport's own counters (the non-zero ones).
 */
export function formatCounters(layers: Readonly<Record<string, LayerCountersSnapshot>>, transports: Readonly<Record<string, NamedCounters | undefined>> = {}): string {
  const rows = Object.entries(layers).map(([layer, c]) => {
    const reasons = Object.entries(c.dropped).filter(([, n]) => n > 0);
    const dropped = reasons.reduce((sum, [, n]) => sum + n, 0);
    return [layer, String(c.received), String(c.sent), String(dropped), reasons.map(([reason, n]) => `${reason} ${n}`).join(', ') || '-'];
  });
  const lines = ['Counters', table(['Layer', 'Received', 'Sent', 'Dropped', 'Drop reasons'], rows)];
  for (const [name, counters] of Object.entries(transports)) {
    if (counters) lines.push(`${name}: ${nonZero(counters).join(', ') || 'all zero'}`);
  }
  return lines.join('\n') + '\n';
}
