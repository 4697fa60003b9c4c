// HTTPS from the board: Node's TLS over a spinet socket, the certificate checked as usual.
// A private CA: SPINET_CA=ca.pem node https-client.mjs https://host/
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { openBoard } from 'spinet';

const url = process.argv[2] ?? 'https://example.com/';
const ca = process.env.SPINET_CA ? readFileSync(process.env.SPINET_CA) : undefined;
const node = await openBoard();
https.get(url, { agent: node.httpsAgent(ca ? { ca } : {}) }, (res) => {
  const cert = res.socket.getPeerCertificate();
  console.log(`HTTP ${res.statusCode} over ${res.socket.getProtocol()}, certificate for ${cert.subject?.CN} verified`);
  res.setEncoding('utf8');
  res.on('data', (chunk) => process.stdout.write(chunk));
  res.on('end', () => node.close());
}).on('error', async (error) => {
  console.error(`GET ${url}: ${error.code ?? ''} ${error.message}`);
  process.exitCode = 1;
  await node.close();
});
