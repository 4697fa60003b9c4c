/**
 * `npm run soak -- --minutes N`: the simulated board (the bridge sketch in avr8js, the emulated
 * ENC28J60, spinet's driver and stack) on the built-in LAN with the lab gateway, under steady
 * traffic for N minutes of wall time: TCP echo both ways (64 KiB each, checked byte for byte), a
 * DNS lookup and a ping every round, and DHCP renewing a short lease all along. Every minute it
 * prints the heap after a full collection, the timers the clock holds, the process's active
 * handles and the board's counters; at the end the heap's slope (least squares over the minutes
 * after the first) and whether anything failed.
 *
 *   --minutes N     wall-clock minutes (default 5)
 *   --board B       sim (default: the sketch in avr8js) or mock (the driver over the mock HAL)
 *   --lease S       DHCP lease in seconds (default 60: a renewal every 30 s of simulated time)
 *   --report FILE   write the minutes and the summary as JSON
 *
 * Run with node's --expose-gc (the npm script does) so the heap figures are live memory only.
 */
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { VirtualClock } from '../src/time/virtual-clock.js';
import { SeededRandom } from '../src/time/random.js';
import { VirtualLan } from '../hal/lan/switch.js';
import { driveVirtualClock } from '../boards/sim/virtual-time.js';
import { Stack } from '../src/stack/stack.js';
import { Tcp } from '../src/tcp/tcp.js';
import { createNet } from '../src/socket/net.js';
import { startTcpService } from '../src/app/services/tcp.js';
import { createStackDhcpClient, createStackResolver } from '../src/app/stack-adapter.js';
import { formatIpv4, parseMac } from '../src/wire/address.js';
import { echo } from '../test/bridge/sim-node.js';
import { LabGateway, LAB_GATEWAY_ADDRESS } from '../tools/lab-gateway.js';
import { connectBoard } from '../tools/boards.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    board: { type: 'string', default: 'sim' },
    lease: { type: 'string', default: '60' },
    report: { type: 'string' },
  },
});
const minutes = Number(values.minutes);
const boardKind = values.board === 'mock' ? 'mock' : 'sim';
const gc = (globalThis as { gc?: () => void }).gc;

const KIB64 = 64 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Tally {
  rounds: number;
  echoToBoard: number;
  echoFromBoard: number;
  bytesChecked: number;
  lookups: number;
  pings: number;
  renewals: number;
  failures: string[];
}

interface Minute {
  minute: number;
  simulatedSeconds: number;
  heapMB: number;
  heldTimers: number;
  activeHandles: number;
  rounds: number;
  renewals: number;
  failures: number;
  counters: Record<string, { received: number; sent: number; dropped: number }>;
  nicDrops: Record<string, number>;
}

/** Least-squares slope of `ys` over 0, 1, 2, … */
function slope(ys: readonly number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

async function main(): Promise<void> {
  const started = Date.now();
  const clock = new VirtualClock();
  const random = new SeededRandom(1);
  const lan = new VirtualLan(clock);
  const gateway = await LabGateway.start({ clock, random: new SeededRandom(2), lan, leaseTimeS: Number(values.lease) });
  const mac = parseMac('02:5e:00:00:00:0a');
  const board = await connectBoard(boardKind === 'mock' ? { kind: 'mock', chip: 'enc28j60' } : { kind: 'sim', chip: 'enc28j60' }, { clock, lan, mac, progress: (m) => console.log(m) });
  // The avr8js board moves the clock itself; the mock board needs a driver.
  const driver = boardKind === 'mock' ? driveVirtualClock(clock) : undefined;
  const stack = new Stack({ clock, random, hostname: 'soak' });
  const iface = stack.addInterface(board.nic);
  const tcp = new Tcp(stack.ip, clock, random, {}, stack.containment);
  stack.registerTransport(tcp);
  const net = createNet(tcp);
  const resolver = createStackResolver(stack, { net });
  await stack.start();
  await startTcpService(net, 'echo', 7);
  const tally: Tally = { rounds: 0, echoToBoard: 0, echoFromBoard: 0, bytesChecked: 0, lookups: 0, pings: 0, renewals: 0, failures: [] };
  const dhcp = createStackDhcpClient(stack, iface.index, { startupDelayMs: { min: 0, max: 0 } });
  const bound = new Promise<void>((resolve) => dhcp.once('bound', () => resolve()));
  dhcp.on('renewed', () => tally.renewals++);
  dhcp.start();
  await bound;
  const boardAddress = formatIpv4(dhcp.lease!.address);
  const gatewayAddress = formatIpv4(LAB_GATEWAY_ADDRESS);
  console.log(`soak: ${board.description}, leased ${boardAddress}; ${minutes} min of TCP echo both ways, DNS, ping, DHCP renewals (lease ${values.lease} s)`);

  const samples: Minute[] = [];
  const sample = (): Minute => {
    gc?.();
    const counters = Object.fromEntries(Object.entries(stack.counters()).map(([layer, c]) => [layer, { received: c.received, sent: c.sent, dropped: Object.values(c.dropped).reduce((a, b) => a + b, 0) }]));
    const minute: Minute = {
      minute: samples.length + 1,
      simulatedSeconds: Math.round(clock.now() / 1000),
      heapMB: Number((process.memoryUsage().heapUsed / 1e6).toFixed(2)),
      heldTimers: clock.heldTimers,
      activeHandles: process.getActiveResourcesInfo().length,
      rounds: tally.rounds,
      renewals: tally.renewals,
      failures: tally.failures.length,
      counters,
      nicDrops: { ...board.nic.stats().drops },
    };
    samples.push(minute);
    console.log(`[${minute.minute} min] ${minute.simulatedSeconds} s simulated, ${minute.rounds} rounds, ${(tally.bytesChecked / 1e6).toFixed(1)} MB echoed byte-exact, ${minute.renewals} renewals, heap ${minute.heapMB} MB, timers ${minute.heldTimers}, handles ${minute.activeHandles}, failures ${minute.failures}`);
    return minute;
  };
  const ticker = setInterval(sample, 60_000);

  let seed = 0;
  while (Date.now() - started < minutes * 60_000) {
    const data = new Uint8Array(KIB64);
    const r = new SeededRandom(++seed);
    for (let i = 0; i < data.length; i++) data[i] = r.u32() & 0xff;
    const expected = sha256(data);
    try {
      const toBoard = await echo(gateway.net, 7, boardAddress, data);
      if (sha256(toBoard) !== expected) throw new Error('echo through the board differs');
      tally.echoToBoard++;
      const fromBoard = await echo(net, 7, gatewayAddress, data);
      if (sha256(fromBoard) !== expected) throw new Error('echo from the board differs');
      tally.echoFromBoard++;
      tally.bytesChecked += 4 * KIB64;
      await resolver.lookup('gateway.lan', { family: 4 });
      tally.lookups++;
      await stack.ping(gatewayAddress, { timeoutMs: 2_000 });
      tally.pings++;
    } catch (error) {
      tally.failures.push(`round ${tally.rounds + 1} at ${(clock.now() / 1000).toFixed(1)} s: ${(error as Error).message}`);
      console.log(`FAILURE: ${tally.failures.at(-1)}`);
    }
    tally.rounds++;
  }
  clearInterval(ticker);
  const last = sample();
  const heaps = samples.slice(1).map((s) => s.heapMB);
  const timers = samples.slice(1).map((s) => s.heldTimers);
  const summary = {
    board: board.description,
    minutes,
    simulatedSeconds: last.simulatedSeconds,
    rounds: tally.rounds,
    echoes: tally.echoToBoard + tally.echoFromBoard,
    bytesChecked: tally.bytesChecked,
    lookups: tally.lookups,
    pings: tally.pings,
    renewals: tally.renewals,
    failures: tally.failures,
    heapSlopeMBPerMinute: Number(slope(heaps).toFixed(3)),
    heapMB: { first: samples[0]?.heapMB, last: last.heapMB, max: Math.max(...samples.map((s) => s.heapMB)) },
    timersSlopePerMinute: Number(slope(timers).toFixed(2)),
    heldTimers: { max: Math.max(...samples.map((s) => s.heldTimers)), last: last.heldTimers },
    activeHandles: { max: Math.max(...samples.map((s) => s.activeHandles)), last: last.activeHandles },
    containedExceptions: stack.containment.total,
  };
  console.log(JSON.stringify(summary, null, 2));
  if (values.report) writeFileSync(values.report, JSON.stringify({ summary, minutes: samples }, null, 2));
  await dhcp.stop({ release: false });
  driver?.stop();
  await stack.stop();
  await board.close();
  await gateway.stop();
  process.exitCode = tally.failures.length > 0 || stack.containment.total > 0 ? 1 : 0;
}

void main();
