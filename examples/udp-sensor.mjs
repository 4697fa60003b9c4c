// A sensor sending a reading every second over UDP (node:dgram's API on spinet), and printing
// what comes back: against the simulated LAN's gateway, its UDP echo (port 7) answers each one.
import { openBoard } from 'spinet';

const [host = 'gateway.lan', port = '7', count = '5'] = process.argv.slice(2);
const node = await openBoard();
const { address } = await node.dns.lookup(host, { family: 4 });
const socket = node.dgram.createSocket('udp4');
socket.on('message', (message, from) => console.log(`reply from ${from.address}:${from.port}: ${message}`));
for (let i = 1; i <= Number(count); i++) {
  const reading = JSON.stringify({ sensor: 'temperature', seq: i, celsius: 20 + Math.round(Math.random() * 50) / 10 });
  socket.send(reading, Number(port), address);
  console.log(`sent ${reading} to ${address}:${port}`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
socket.close();
await node.close();
