import { openNode, type Values } from '../node.js';
import { UsageError } from '../options.js';
import { formatIpv4, tryParseIpv4 } from '../../src/wire/address.js';

/** `spinet resolve NAME`: A (and AAAA) records through spinet's resolver, from the board. */
export async function resolve(values: Values, positionals: string[]): Promise<number> {
  const name = positionals[0];
  if (!name) throw new UsageError('which name? spinet resolve NAME');
  const node = await openNode(values, (m) => console.error(m));
  try {
    // An IPv4 literal needs no server: the resolver answers it itself, as dns.lookup does.
    if (tryParseIpv4(name) === undefined) {
      if (!node.stack.dnsServers.length) throw Object.assign(new Error('no DNS server: give --dns A or --dhcp'), { code: 'ENOTFOUND' });
      console.error(`asking ${node.stack.dnsServers.map(formatIpv4).join(', ')}`);
    }
    const addresses = await node.dns.lookup(name, { all: true });
    if (values.json === true) console.log(JSON.stringify({ name, addresses }));
    else for (const a of addresses) console.log(`${name}\t${a.family === 4 ? 'A' : 'AAAA'}\t${a.address}`);
    return addresses.length ? 0 : 1;
  } finally {
    await node.close();
  }
}
