// An HTTP client on the board: http.get with spinet's agent; names resolve through the board's DNS.
import http from 'node:http';
import { openBoard } from 'spinet';

const url = process.argv[2] ?? 'http://gateway.lan/'; // the simulated LAN's gateway serves a page
const node = await openBoard();
http.get(url, { agent: node.agent }, (res) => {
  console.log(`HTTP ${res.statusCode} ${res.statusMessage}, ${res.headers['content-type']}`);
  res.setEncoding('utf8');
  res.on('data', (chunk) => process.stdout.write(chunk));
  res.on('end', () => node.close());
}).on('error', async (error) => {
  console.error(`GET ${url}: ${error.code ?? ''} ${error.message}`);
  process.exitCode = 1;
  await node.close();
});
