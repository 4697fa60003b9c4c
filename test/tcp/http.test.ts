import { describe, expect, it } from 'vitest';
import http from 'node:http';
import { Buffer } from 'node:buffer';
import { SeededRandom, randomFill } from '../../src/time/random.js';
import { SERVER, runUntil, twoHosts } from './net-harness.js';
import { sha256 } from './harness.js';

/**
 * The proof that the sockets are Node sockets: node:http, unmodified, on both ends — an
 * http.Server fed spinet connections, and http.request dialling through spinet.
 */
describe('node:http over spinet TCP', () => {
  it('serves GET and POST between http.request and http.Server, keep-alive and a large body', async () => {
    const { clock, serverNet, clientNet } = twoHosts({ delay: 2, loss: 0.01, reorder: 0.02, jitter: 10 }, { minRto: 200 }, 7);
    const big = Buffer.from(randomFill(new SeededRandom(9), new Uint8Array(300_000)));
    const httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method === 'GET' && req.url === '/big') {
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
          res.end(big);
          return;
        }
        const body = Buffer.concat(chunks);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-remote': `${req.socket.remoteAddress}` });
        res.end(`${req.method} ${req.url} ${body.length} ${sha256(body).slice(0, 16)}`);
      });
    });
    const tcpServer = serverNet.createServer((socket) => httpServer.emit('connection', socket));
    tcpServer.listen(80);

    const request = (options: http.RequestOptions, body?: Buffer) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const req = http.request(
          { host: SERVER, port: 80, createConnection: () => clientNet.createConnection(80, SERVER) as unknown as import('node:net').Socket, ...options },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });

    let getResult: Awaited<ReturnType<typeof request>> | undefined;
    void request({ method: 'GET', path: '/hello' }).then((r) => (getResult = r));
    await runUntil(clock, () => getResult !== undefined, 60_000);
    expect(getResult?.status).toBe(200);
    expect(getResult?.body.toString()).toBe(`GET /hello 0 ${sha256(new Uint8Array(0)).slice(0, 16)}`);
    expect(getResult?.headers['x-remote']).toBe('192.0.2.2');

    const upload = Buffer.from(randomFill(new SeededRandom(10), new Uint8Array(200_000)));
    let postResult: Awaited<ReturnType<typeof request>> | undefined;
    void request({ method: 'POST', path: '/upload', headers: { 'content-length': upload.length } }, upload).then((r) => (postResult = r));
    await runUntil(clock, () => postResult !== undefined, 120_000);
    expect(postResult?.body.toString()).toBe(`POST /upload 200000 ${sha256(upload).slice(0, 16)}`);

    let bigResult: Awaited<ReturnType<typeof request>> | undefined;
    void request({ method: 'GET', path: '/big' }).then((r) => (bigResult = r));
    await runUntil(clock, () => bigResult !== undefined, 120_000);
    expect(bigResult?.body.length).toBe(big.length);
    expect(sha256(bigResult!.body)).toBe(sha256(big));
  });

  it('an http.Server on spinet answers a client that speaks raw HTTP/1.1 over a spinet socket', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    const httpServer = http.createServer((req, res) => res.end(`hi ${req.headers['user-agent']}`));
    serverNet.createServer((s) => httpServer.emit('connection', s)).listen(8080);
    const socket = clientNet.createConnection(8080, SERVER);
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    let closed = false;
    socket.on('close', () => (closed = true));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: spinet\r\nConnection: close\r\n\r\n');
    await runUntil(clock, () => closed, 10_000);
    expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(response.endsWith('hi spinet')).toBe(true);
  });
});
