// A web server on the board: Node's own http server, its connections spinet TCP sockets.
// On the simulated LAN the page is forwarded to 127.0.0.1 so a browser here can open it.
import http from 'node:http';
import { openBoard } from 'spinet';

const node = await openBoard(); // SPINET_PORT=/dev/ttyACM0 for a real board
let visits = 0;
const server = http.createServer((req, res) => {
  visits++;
  res.setHeader('content-type', 'text/plain');
  res.end(`hello from spinet: ${req.method} ${req.url}, visit ${visits}\n`);
});
node.net.createServer((socket) => server.emit('connection', socket)).listen(80);

const address = node.stats().interfaces[0].addresses[0].split('/')[0];
console.log(`serving http://${address}/`);
if (node.gateway) {
  const local = await node.forward(80, Number(process.env.PORT ?? 0));
  console.log(`from this machine: http://127.0.0.1:${local.port}/`);
}
process.once('SIGINT', () => node.close().then(() => process.exit(0)));
process.once('SIGTERM', () => node.close().then(() => process.exit(0)));
