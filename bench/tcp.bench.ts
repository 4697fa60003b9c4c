import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualLan, VirtualNic } from '../hal/lan/switch.js';
import { ImpairedLan, type ImpairmentConfig } from '../hal/lan/impairment.js';
import { tapUnavailableReason } from '../hal/lan/tap.js';
import { Stack } from '../src/stack/stack.js';
import { Tcp } from '../src/tcp/tcp.js';
import { bbr, cubic } from '../src/tcp/congestion.js';
import type { TcpOptions } from '../src/tcp/options.js';
import { createNet, type Net, type Socket } from '../src/socket/net.js';
import { VirtualClock } from '../src/time/virtual-clock.js';
import { RealClock } from '../src/time/real-clock.js';
import { SeededRandom } from '../src/time/random.js';
import type { Clock } from '../src/time/clock.js';
import { parseMac } from '../src/wire/address.js';
import { createLab, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from '../test/lab/netns.js';
import type { Benchmark, Measurement } from './harness.js';

/**
 * TCP: bulk throughput and connection churn between two stacks in this one thread (A = .10,
 * B = .11 on a VirtualLan delivering on microtasks, so the figures are the stacks' own cost), memory per idle
 * connection, and — as root — goodput against the Linux kernel through the TAP lab on a 10 Mbit/s,
 * 20 ms, 2 % loss link next to Linux ⇄ Linux over the same link in the same run.
 */
/**
 * The wire: each frame is copied (as a NIC's DMA would) and delivered on a microtask, so a segment
 * and its answer do not nest on the call stack for the whole transfer, and no timer is involved.
 */
class MicrotaskLan extends VirtualLan {
  protected override transmitTo(target: Parameters<VirtualLan['transmitTo']>[0], frame: Uint8Array): void {
    const copy = frame.slice();
    queueMicrotask(() => target.deliver(copy));
  }
}

async function twoStacks(clock: Clock, lan: VirtualLan = new MicrotaskLan(clock)): Promise<{ a: Net; b: Net; tcpA: Tcp; tcpB: Tcp }> {
  const make = async (n: number) => {
    const random = new SeededRandom(n);
    const stack = new Stack({ clock, random });
    stack.addInterface(new VirtualNic(lan, parseMac(`02:00:00:00:00:${n}`), `vnic${n}`)).addAddress(`192.0.2.${n}`, 24);
    const tcp = new Tcp(stack.ip, clock, random);
    stack.registerTransport(tcp);
    await stack.start();
    return { stack, tcp };
  };
  const a = await make(10);
  const b = await make(11);
  a.stack.arp.addStatic(1, '192.0.2.11', '02:00:00:00:00:11');
  b.stack.arp.addStatic(1, '192.0.2.10', '02:00:00:00:00:10');
  return { a: createNet(a.tcp), b: createNet(b.tcp), tcpA: a.tcp, tcpB: b.tcp };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Bytes/s from A to B through node:net sockets: best of three rounds of `bytes`. */
async function bulkThroughput(bytes: number): Promise<number> {
  const clock = new VirtualClock();
  const { a, b } = await twoStacks(clock);
  let received = 0;
  b.createServer((socket: Socket) => socket.on('data', (chunk: Buffer) => (received += chunk.length))).listen(5001);
  const client = a.createConnection(5001, '192.0.2.11');
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const round = async (total: number): Promise<number> => {
    const target = received + total;
    const start = performance.now();
    let sent = 0;
    while (received < target) {
      while (sent < total && !client.writableNeedDrain) {
        client.write(chunk);
        sent += chunk.length;
      }
      await turn();
      // Delayed ACKs are the only timers: let virtual time pass when the pipe idles.
      if (clock.nextDeadline() !== undefined) clock.advance(1);
    }
    return (total * 1000) / (performance.now() - start);
  };
  await round(bytes / 4);
  let best = 0;
  for (let r = 0; r < 3; r++) best = Math.max(best, await round(bytes));
  client.destroy();
  return best;
}

/** Connections opened (3-way handshake), one request byte each way, and closed (FIN both ways) per second. */
async function connectionsPerSecond(count: number): Promise<number> {
  const clock = new VirtualClock();
  const { a, b, tcpA, tcpB } = await twoStacks(clock);
  b.createServer((socket: Socket) => socket.once('data', () => socket.end('y'))).listen(5002);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = a.createConnection(5002, '192.0.2.11');
      socket.on('error', reject);
      socket.on('connect', () => socket.end('x'));
      socket.on('close', () => resolve());
      socket.resume();
    });
  const run = async (n: number): Promise<number> => {
    const start = performance.now();
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: 50 }, one));
      // TIME-WAIT lasts 2·MSL: let it pass on the virtual clock so ports and memory are reused.
      clock.advance(2 * tcpA.options.msl + 1);
    }
    return (n * 1000) / (performance.now() - start);
  };
  await run(count / 4);
  let best = 0;
  for (let r = 0; r < 3; r++) best = Math.max(best, await run(count));
  if (tcpA.connectionCount !== 0 || tcpB.connectionCount !== 0) throw new Error(`connections left: ${tcpA.connectionCount}/${tcpB.connectionCount}`);
  return best;
}

function gcFunction(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** Heap bytes per established, idle connection (both ends in this process: per end). */
async function memoryPerIdleConnection(count: number): Promise<number> {
  const gc = gcFunction();
  const clock = new VirtualClock();
  const { a, b } = await twoStacks(clock);
  const accepted: Socket[] = [];
  b.createServer((socket: Socket) => accepted.push(socket)).listen(5003);
  gc();
  await turn();
  gc();
  const before = process.memoryUsage().heapUsed;
  const clients: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = a.createConnection(5003, '192.0.2.11');
    clients.push(socket);
    if (i % 100 === 99) await turn();
  }
  await waitFor(() => accepted.length === count && clients.every((s) => !s.connecting), 30_000, 'connections established');
  gc();
  await turn();
  gc();
  const after = process.memoryUsage().heapUsed;
  for (const s of [...clients, ...accepted]) s.destroy();
  return (after - before) / (2 * count);
}

// ---------------------------------------------------------------------------------------------
// Goodput through the TAP lab, next to Linux ⇄ Linux over the same impaired link.
// ---------------------------------------------------------------------------------------------

const RATE_BITS = 10_000_000;
/** One direction of the link: 10 Mbit/s, 20 ms, 2 % loss (netem's rate, delay, loss). */
const LINK: ImpairmentConfig = { rateBytesPerSecond: RATE_BITS / 8, delayMs: 20, loss: 0.02, queueLimitBytes: 128 * 1024 };
const GOODPUT_BYTES = 3_000_000;

async function listenSink(lab: Lab, port: number): Promise<void> {
  lab.spawn('socat', ['-u', `TCP4-LISTEN:${port},reuseaddr`, 'OPEN:/dev/null']);
  await waitFor(async () => (await lab.exec('ss', ['-Hltn', `sport = :${port}`])).stdout.includes(`:${port}`), 5_000, `sink on :${port}`);
}

/** spinet → kernel over the impaired TAP port: bits/s of payload, connect to the kernel's FIN. */
async function spinetGoodput(options: Partial<TcpOptions> = {}): Promise<{ bps: number; how: string; recovery: string }> {
  const lab = await createLab();
  try {
    const clock = new RealClock();
    const lan = new ImpairedLan(clock, { seed: 10 });
    lab.tap.attachTo(lan);
    // The same userspace link as Linux→Linux below (not tc netem even where the kernel has
    // sch_netem): both runs must cross one identical, seeded impairment to be compared.
    lan.impair(lab.tap.label, { toPort: LINK, fromPort: LINK });
    const random = new SeededRandom(11);
    const stack = new Stack({ clock, random });
    stack.addInterface(new VirtualNic(lan, parseMac('02:00:00:00:00:10'), 'vnic10')).addAddress(LAB_STACK_ADDRESS, 24);
    const tcp = new Tcp(stack.ip, clock, random, options);
    stack.registerTransport(tcp);
    await stack.start();
    const net = createNet(tcp);
    await listenSink(lab, 9000);
    const start = performance.now();
    const socket = net.createConnection(9000, LAB_HOST_ADDRESS);
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
      socket.end(Buffer.alloc(GOODPUT_BYTES, 0x33));
    });
    const seconds = (performance.now() - start) / 1000;
    await stack.stop();
    const s = tcp.stats;
    const recovery = `${s.fastRetransmits} fast retransmits, ${s.retransmitTimeouts} RTOs, ${s.retransmittedSegments} segments resent`;
    return { bps: (GOODPUT_BYTES * 8) / seconds, how: 'seeded netem-alike on the TAP port (hal/lan/impairment.ts)', recovery };
  } finally {
    await lab.close();
  }
}

/**
 * Linux → Linux: two namespaces whose TAPs meet on the same impaired switch port as spinet's run
 * (a veth pair cannot be impaired without the kernel's sch_netem, which this machine lacks), sending with `congestionControl`: the namespaces' sysctl where the kernel allows it (outside
 * the initial namespace only controllers in tcp_allowed_congestion_control may be the default),
 * else TCP_CONGESTION on the sender's socket (root may pick any loaded controller).
 */
async function linuxGoodput(dir: string, congestionControl: 'bbr' | 'cubic'): Promise<number> {
  const file = join(dir, 'payload.bin');
  writeFileSync(file, Buffer.alloc(GOODPUT_BYTES, 0x33));
  const sender = await createLab({ hostAddress: '192.0.2.1' });
  const receiver = await createLab({ hostAddress: '192.0.2.2' });
  try {
    let socketOption = '';
    for (const lab of [sender, receiver]) {
      const set = await lab.exec('sysctl', ['-w', `net.ipv4.tcp_congestion_control=${congestionControl}`]);
      // setsockopt(IPPROTO_TCP = 6, TCP_CONGESTION = 13, name).
      if (set.code !== 0) socketOption = `,setsockopt-string=6:13:${congestionControl}`;
    }
    const clock = new RealClock();
    const lan = new ImpairedLan(clock, { seed: 10 });
    sender.tap.attachTo(lan);
    receiver.tap.attachTo(lan);
    // Each frame crosses the receiver's TAP port once, either way: one impaired hop per direction.
    lan.impair(receiver.tap.label, { toPort: LINK, fromPort: LINK });
    await listenSink(receiver, 9000);
    const start = performance.now();
    const result = await sender.exec('socat', ['-u', `OPEN:${file}`, `TCP:192.0.2.2:9000${socketOption}`], { timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`socat: ${result.stderr}`);
    // socat -u returns once the receiver has read our FIN and closed: all bytes are delivered.
    await waitFor(async () => !(await receiver.exec('ss', ['-Htn', 'state', 'established'])).stdout.trim(), 30_000, 'receiver done');
    return (GOODPUT_BYTES * 8) / ((performance.now() - start) / 1000);
  } finally {
    await sender.close();
    await receiver.close();
  }
}

export const benchmarks: Benchmark[] = [
  {
    name: 'tcp bulk',
    async run(): Promise<Measurement[]> {
      const bytesPerSecond = await bulkThroughput(Number(process.env.TCP_BULK_BYTES ?? 64 << 20));
      return [
        {
          name: 'tcp bulk throughput stack→stack',
          value: (bytesPerSecond * 8) / 1e9,
          unit: 'Gbit/s',
          limit: 1,
          note: 'node:net sockets both ends, 64 KiB writes, two stacks on a VirtualLan in one thread',
        },
      ];
    },
  },
  {
    name: 'tcp connections',
    async run(): Promise<Measurement[]> {
      const rate = await connectionsPerSecond(2_000);
      const perConnection = await memoryPerIdleConnection(2_000);
      return [
        { name: 'tcp connections opened+closed stack→stack', value: rate, unit: 'conn/s', note: 'connect, 1 byte each way, FIN both ways; 50 in parallel' },
        { name: 'tcp memory per idle connection (one end)', value: perConnection / 1024, unit: 'KiB', higherIsBetter: false, note: 'heap delta / (2 × 2000 ends), socket + TCB, empty buffers' },
      ];
    },
  },
  {
    name: 'tcp goodput netem',
    async run(): Promise<Measurement[]> {
      if (await tapUnavailableReason()) return [];
      const dir = mkdtempSync(join(tmpdir(), 'spinet-bench-tcp-'));
      try {
        const linuxCubic = await linuxGoodput(dir, 'cubic');
        const linuxBbr = await linuxGoodput(dir, 'bbr');
        const spinet = await spinetGoodput();
        const spinetCubic = await spinetGoodput({ congestionControl: cubic });
        const spinetBbr = await spinetGoodput({ congestionControl: bbr });
        // BBR wants ~2 BDP in flight (≈ 100–130 KB here): beyond the default 64 KiB send buffer.
        const spinetBbrBig = await spinetGoodput({ congestionControl: bbr, sendBufferSize: 256 * 1024 });
        const note = `${GOODPUT_BYTES / 1e6} MB; ${spinet.how}`;
        return [
          {
            name: 'tcp goodput spinet→kernel, 10 Mbit/s 20 ms 2 % loss (default controller)',
            value: spinet.bps / 1e6,
            unit: 'Mbit/s',
            baseline: linuxCubic / 1e6,
            limit: (0.8 * linuxCubic) / 1e6,
            note: `${note}; ${spinet.recovery}; baseline Linux→Linux CUBIC over the same link`,
          },
          {
            name: 'tcp goodput spinet (CUBIC)→kernel, same link',
            value: spinetCubic.bps / 1e6,
            unit: 'Mbit/s',
            baseline: linuxCubic / 1e6,
            limit: (0.8 * linuxCubic) / 1e6,
            note: `${note}; ${spinetCubic.recovery}; baseline Linux→Linux CUBIC`,
          },
          {
            name: 'tcp goodput Linux→Linux BBR, same link',
            value: linuxBbr / 1e6,
            unit: 'Mbit/s',
            baseline: linuxCubic / 1e6,
            note: 'the kernel default here; BBR does not back off on random loss',
          },
          {
            name: 'tcp goodput spinet (BBR)→kernel, same link',
            value: spinetBbr.bps / 1e6,
            unit: 'Mbit/s',
            baseline: linuxBbr / 1e6,
            limit: (0.8 * linuxBbr) / 1e6,
            note: `${note}; ${spinetBbr.recovery}; default 64 KiB send buffer; baseline Linux→Linux BBR (like for like: both model-based)`,
          },
          {
            name: 'tcp goodput spinet (BBR, 256 KiB send buffer)→kernel, same link',
            value: spinetBbrBig.bps / 1e6,
            unit: 'Mbit/s',
            baseline: linuxBbr / 1e6,
            limit: (0.8 * linuxBbr) / 1e6,
            note: `${note}; ${spinetBbrBig.recovery}; baseline Linux→Linux BBR (Linux autotunes its buffers up to 4 MiB)`,
          },
        ];
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  },
];
