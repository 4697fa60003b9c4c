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
import { ImpairedNic } from '../../hal/lan/impairment.js';

/** spinet's TCP against the Linux kernel's, through a TAP: curl to a spinet server, spinet to socat. */
const skip = await skipLabUnless(['curl', 'socat', 'ss']);

/** A stack with TCP on a LAN bridged into a fresh lab; `impair` wraps its NIC (the link's faults). */
async function setUp(impair?: (nic: VirtualNic, clock: RealClock) => ImpairedNic) {
  const lab = await createLab();
  const clock = new RealClock();
  const lan = new VirtualLan(clock);
  lab.tap.attachTo(lan);
  const random = new CryptoRandom();
  const stack = new Stack({ clock, random });
  const vnic = new VirtualNic(lan, parseMac('02:00:00:00:5e:0b'), 'spinet0');
  const nic = impair ? impair(vnic, clock) : vnic;
  stack.addInterface(nic).addAddress(LAB_STACK_ADDRESS, 24);
  const tcp = new Tcp(stack.ip, clock, random);
  stack.registerTransport(tcp);
  await stack.start();
  return { lab, stack, nic, net: createNet(tcp) };
}

/** Write `data` to a kernel echo server (socat PIPE on :8080) and collect the echo. */
async function echoThroughKernel(lab: Lab, net: Net, data: Uint8Array): Promise<Buffer> {
  lab.spawn('socat', ['TCP4-LISTEN:8080,bind=192.0.2.1,reuseaddr', 'PIPE']);
  await waitFor(async () => (await lab.exec('ss', ['-Hltn', 'sport = :8080'])).stdout.includes('8080'), 5_000, 'socat on :8080');
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
  return Buffer.concat(received);
}

const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const pattern = (length: number) => new Uint8Array(length).map((_, i) => (i * 31 + (i >>> 10)) & 0xff);

describe.skipIf(skip)('spinet TCP ⇄ Linux kernel TCP over a TAP', () => {
  let lab: Lab;
  let stack: Stack;
  let net: Net;

  beforeAll(async () => {
    ({ lab, stack, net } = await setUp());
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
    const data = pattern(1 << 20);
    const echoed = await echoThroughKernel(lab, net, data);
    expect(echoed.length).toBe(data.length);
    expect(digest(echoed)).toBe(digest(data));
  }, 30_000);
});

describe.skipIf(skip)('spinet TCP ⇄ Linux kernel TCP over a lossy, reordering, duplicating link', () => {
  let lab: Lab;
  let stack: Stack;
  let net: Net;
  let nic: ImpairedNic;

  beforeAll(async () => {
    const impairment = { loss: 0.02, reorder: 0.02, duplicate: 0.01, reorderHoldMs: 2 };
    const setup = await setUp((vnic, clock) => new ImpairedNic(vnic, { clock, seed: 42, transmit: impairment, receive: impairment }));
    ({ lab, stack, net } = setup);
    nic = setup.nic as ImpairedNic;
  });

  afterAll(async () => {
    await stack?.stop();
    await lab?.close();
  });

  it('still delivers 256 KiB intact both ways, recovering every lost segment', async () => {
    const data = pattern(256 << 10);
    const echoed = await echoThroughKernel(lab, net, data);
    expect(digest(echoed)).toBe(digest(data));
    const { transmit, receive } = nic.impairment;
    expect(transmit.lost + receive.lost).toBeGreaterThan(0);
    expect(transmit.reordered + receive.reordered).toBeGreaterThan(0);
  }, 60_000);
});
