import { VirtualLan, VirtualNic } from '../hal/lan/switch.js';
import { ImpairedLan } from '../hal/lan/impairment.js';
import { Stack } from '../src/stack/stack.js';
import { twoStacks } from './two-stacks.js';
import { VirtualClock } from '../src/time/virtual-clock.js';
import { RealClock } from '../src/time/real-clock.js';
import { SeededRandom } from '../src/time/random.js';
import type { Clock } from '../src/time/clock.js';
import { parseMac } from '../src/wire/address.js';
import { tapUnavailableReason } from '../hal/lan/tap.js';
import { createLab, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS } from '../test/lab/netns.js';
import { percentile, type Benchmark, type Measurement } from './harness.js';
import { createDgram } from '../src/socket/dgram.js';


async function udpDatagramsPerSecond(payloadSize: number): Promise<{ rate: number; received: number; sent: number }> {
  const clock = new VirtualClock();
  const { a, b } = await twoStacks(clock);
  const receiver = createDgram(b.udp).createSocket({ type: 'udp4' });
  let received = 0;
  receiver.on('message', () => received++);
  await new Promise<void>((resolve) => receiver.bind(9000, () => resolve()));
  const sender = createDgram(a.udp).createSocket({ type: 'udp4' });
  const payload = Buffer.alloc(payloadSize, 0x61);
  const batch = 10_000;
  const send = (n: number) => {
    for (let i = 0; i < n; i++) sender.send(payload, 9000, '192.0.2.11');
  };
  // Warm up the JIT, then take the best of three one-second rounds.
  const warmEnd = performance.now() + 300;
  while (performance.now() < warmEnd) send(batch);
  let best = 0;
  let sent = 0;
  const receivedBefore = received;
  for (let round = 0; round < 3; round++) {
    let n = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      send(batch);
      n += batch;
      elapsed = performance.now() - start;
    } while (elapsed < 1_000);
    sent += n;
    best = Math.max(best, (n * 1000) / elapsed);
  }
  return { rate: best, received: received - receivedBefore, sent };
}

async function pingRtt(clock: Clock, lan: VirtualLan | undefined, count: number): Promise<{ rtts: number[]; wallPerPingUs: number }> {
  const { a } = await twoStacks(clock, lan);
  const rtts: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const reply = a.ping('192.0.2.11', { timeoutMs: 1_000 });
    if (clock instanceof VirtualClock) clock.runUntilIdle(10_000);
    rtts.push((await reply).rttMs);
  }
  return { rtts, wallPerPingUs: ((performance.now() - start) * 1000) / count };
}

export const benchmarks: Benchmark[] = [
  {
    name: 'udp',
    async run() {
      const out: Measurement[] = [];
      for (const size of [16, 512]) {
        const { rate, received, sent } = await udpDatagramsPerSecond(size);
        if (received !== sent) throw new Error(`sent ${sent} datagrams, ${received} arrived`);
        out.push({
          name: `udp ${size} B datagrams stack→stack`,
          value: rate,
          unit: 'datagram/s',
          ...(size === 16 ? { limit: 300_000 } : {}),
          note: 'two stacks on a VirtualLan, one thread; every datagram delivered',
        });
      }
      return out;
    },
  },
  {
    name: 'ping',
    async run() {
      const out: Measurement[] = [];
      // Virtual clock, ideal wire: the stack adds no virtual time of its own.
      const ideal = await pingRtt(new VirtualClock(), undefined, 2_000);
      out.push({ name: 'ping rtt, virtual clock, ideal LAN', value: percentile(ideal.rtts, 50), unit: 'ms', limit: 0, higherIsBetter: false });
      out.push({ name: 'ping cost, virtual clock (wall time per ping)', value: ideal.wallPerPingUs, unit: 'µs', higherIsBetter: false });
      // Virtual clock, 1 ms each way on the LAN: exactly 2 ms, every time.
      const clock = new VirtualClock();
      const lan = new ImpairedLan(clock, { seed: 1 });
      lan.impairAll({ toPort: { delayMs: 1 } });
      const delayed = await pingRtt(clock, lan, 500);
      if (Math.min(...delayed.rtts) !== Math.max(...delayed.rtts)) throw new Error('virtual-clock RTTs over a fixed-delay LAN differ');
      out.push({ name: 'ping rtt, virtual clock, 1 ms links', value: Math.max(...delayed.rtts), unit: 'ms', limit: 2, higherIsBetter: false });
      // Real clock, two stacks in one process: promise turn plus stack processing.
      const real = await pingRtt(new RealClock(), undefined, 2_000);
      out.push({ name: 'ping rtt, real clock, stack→stack p50', value: percentile(real.rtts, 50) * 1000, unit: 'µs', higherIsBetter: false });
      out.push({ name: 'ping rtt, real clock, stack→stack p99', value: percentile(real.rtts, 99) * 1000, unit: 'µs', higherIsBetter: false });
      // Real clock against the Linux kernel through a TAP in a namespace (root only).
      if (!(await tapUnavailableReason())) {
        const lab = await createLab();
        try {
          const clk = new RealClock();
          const vlan = new VirtualLan(clk);
          lab.tap.attachTo(vlan);
          const stack = new Stack({ clock: clk, random: new SeededRandom(3) });
          stack.addInterface(new VirtualNic(vlan, parseMac('02:00:00:00:00:10'), 'vnic10')).addAddress(LAB_STACK_ADDRESS, 24);
          await stack.start();
          const rtts: number[] = [];
          for (let i = 0; i < 500; i++) rtts.push((await stack.ping(LAB_HOST_ADDRESS, { timeoutMs: 1_000 })).rttMs);
          out.push({ name: 'ping rtt, real clock, stack→kernel via TAP p50', value: percentile(rtts.slice(10), 50) * 1000, unit: 'µs', higherIsBetter: false });
          out.push({ name: 'ping rtt, real clock, stack→kernel via TAP p99', value: percentile(rtts.slice(10), 99) * 1000, unit: 'µs', higherIsBetter: false });
          const kernel = await lab.exec('ping', ['-c', '200', '-i', '0.002', '-q', LAB_STACK_ADDRESS]);
          const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(kernel.stdout);
          if (m) out.push({ name: 'ping rtt, kernel→stack via TAP (iputils avg)', value: Number(m[2]) * 1000, unit: 'µs', higherIsBetter: false });
          await stack.stop();
        } finally {
          await lab.close();
        }
      }
      return out;
    },
  },
];
