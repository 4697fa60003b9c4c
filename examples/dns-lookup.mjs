// DNS on the board: node.dns has the promise API of node:dns (lookup, resolve4, getServers).
import { openBoard } from 'spinet';

const names = process.argv.slice(2);
const node = await openBoard();
console.log(`DNS servers: ${node.dns.getServers().join(', ')}`);
for (const name of names.length ? names : ['gateway.lan']) {
  try {
    const { address } = await node.dns.lookup(name, { family: 4 });
    const records = await node.dns.resolve4(name, { ttl: true });
    console.log(`${name} → ${address} (${records.map((r) => `${r.address} ttl ${r.ttl}`).join(', ')})`);
  } catch (error) {
    console.log(`${name}: ${error.code}`);
    process.exitCode = 1;
  }
}
await node.close();
