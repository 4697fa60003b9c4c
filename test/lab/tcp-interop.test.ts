import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createLab, skipLabUnless, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet, type Net, type Socket } from '../../src/socket/net.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';

/** spinet's TCP against the Linux kernel's, through a TAP: curl to a spinet server, spinet to socat. */
const skip = await skipLabUnless(['curl', 'socat', 'ss']);

describe.skipIf(skip)('spinet TCP ⇄ Linux kernel TCP over a TAP', () => {
  let lab: Lab;
  let stack: Stack;
  let net: Net;

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    const random = new CryptoRandom();
    stack = new Stack({ clock, random });
    stack.addInterface(new VirtualNic(lan, parseMac('02:00:00:00:5e:0b'), 'spinet0')).addAddress(LAB_STACK_ADDRESS, 24);
    const tcp = new Tcp(stack.ip, clock, random);
    stack.registerTransport(tcp);
    net = createNet(tcp);
    await stack.start();
  });

  afterAll(async () => {
    await stack?.stop();
    await lab?.close();
  });

  it('serves curl over HTTP/1.0', async () => {
    const server = net.createServer((socket: Socket) => {
      socket.once('data', () => socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, linux\n'));
    });
    await new Promise<void>((resolve) => server.listen(80, () => resolve()));
    const result = await lab.exec('curl', ['-sS', '--max-time', '5', `http://${LAB_STACK_ADDRESS}/`]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('hello, linux\n');
    server.close();
  });

  it('sends 1 MiB to a kernel echo server and reads back the same bytes', async () => {
    lab.spawn('socat', ['TCP4-LISTEN:8080,bind=192.0.2.1,reuseaddr', 'PIPE']);
    await waitFor(async () => (await lab.exec('ss', ['-Hltn', 'sport = :8080'])).stdout.includes('8080'), 5_000, 'socat on :8080');
    const data = new Uint8Array(1 << 20).map((_, i) => (i * 31 + (i >>> 10)) & 0xff);
    const received: Buffer[] = [];
    let receivedBytes = 0;
    const socket = net.createConnection(8080, LAB_HOST_ADDRESS);
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(Buffer.from(chunk));
        receivedBytes += chunk.length;
        if (receivedBytes >= data.length) resolve();
      });
      socket.on('error', reject);
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(Buffer.from(data));
    await done;
    socket.end();
    const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    expect(receivedBytes).toBe(data.length);
    expect(digest(Buffer.concat(received))).toBe(digest(data));
  }, 30_000);
});
