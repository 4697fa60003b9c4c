/**
 * The W5500 on the simulated Uno against the Linux kernel, in real time: spinet's Stack on the
 * W5500 driver → BridgeHal → the committed sketch in avr8js (its receive program armed) → the
 * strict W5500 emulator on its SPI pins → a VirtualLan bridged to a TAP in a throw-away namespace,
 * where the kernel (192.0.2.1) pings the board (small and fragmented), echoes UDP through it, curls its status page and
 * pushes 1 MiB through its TCP echo (1 MiB each way) — then 512 KiB each way on a cable that loses,
 * reorders and duplicates frames (seeded; LOSSY_BYTES says why not 1 MiB). Needs root,
 * /dev/net/tun, socat, curl, ping.
 *
 * The simulated AVR keeps real time only on an idle machine (about 10 KiB/s each way through the
 * echo at 1 Mbaud); on a loaded one it runs slower, so the limits are generous.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, skipLabUnless, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { kernelEcho } from './kernel-echo.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { ImpairedLan } from '../../hal/lan/impairment.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import { startStatusPage } from '../../src/app/services/status-page.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { startUdpService } from '../../src/app/services/udp.js';
import { createSimNode, sha256, testPattern, type SimNode } from '../bridge/sim-node.js';

const skip = await skipLabUnless(['ping', 'socat', 'curl']);
const MIB = 1 << 20;
/**
 * Under loss, 512 KiB each way, not 1 MiB: the simulated AVR is the bottleneck (about 10 KiB/s each
 * way through the echo on an idle machine; 1 MiB clean took 178 s and 512 KiB lossy 127–144 s at a
 * load of 4–5 on 2 cores), so 1 MiB with its retransmissions would take twice the ~150 s this fits.
 */
const LOSSY_BYTES = 512 << 10;

describe.skipIf(skip)('the W5500 on the simulated Uno, with the Linux kernel as the peer (real time)', () => {
  let lab: Lab;
  let node: SimNode<W5500Nic>;
  const violations: string[] = [];

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    node = await createSimNode({ clock, lan, random: new CryptoRandom(), chip: 'w5500', onStrictViolation: (m) => violations.push(m) });
    await startStatusPage(node.net, 80, node.stack);
    await startTcpService(node.net, 'echo', 7);
    await startUdpService(node.stack, 'echo', 7);
  });

  afterAll(async () => {
    await node?.close();
    await lab?.close();
  });

  it('answers the kernel’s pings, small and fragmented', async () => {
    // -W 10: the simulated AVR runs in real time only on an idle machine; on a loaded one it lags.
    const small = await lab.exec('ping', ['-c', '5', '-i', '0.2', '-W', '10', LAB_STACK_ADDRESS], { timeoutMs: 30_000 });
    expect(small.stdout).toMatch(/5 packets transmitted, 5 received/);
    const big = await lab.exec('ping', ['-c', '2', '-s', '3000', '-W', '10', LAB_STACK_ADDRESS], { timeoutMs: 30_000 });
    expect(big.stdout).toMatch(/2 packets transmitted, 2 received/);
    console.log(`kernel → simulated Uno + W5500 ping: ${/= ([\d.]+\/[\d.]+\/[\d.]+)/.exec(small.stdout)?.[1]} ms min/avg/max`);
  }, 60_000);

  it('echoes UDP to socat: a line, and a 3000-byte datagram the kernel fragments', async () => {
    const line = await lab.exec('socat', ['-t', '10', '-T', '15', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], { input: 'hello over the W5500 on the Uno\n', timeoutMs: 30_000 });
    expect(line.stdout, line.stderr).toBe('hello over the W5500 on the Uno\n');
    const big = 'spinet-'.repeat(428) + 'end\n'; // 3000 bytes: three fragments each way
    const echo = await lab.exec('socat', ['-t', '10', '-T', '15', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], { input: big, timeoutMs: 30_000 });
    expect(echo.stdout.length, echo.stderr).toBe(big.length);
    expect(echo.stdout).toBe(big);
  }, 60_000);

  it('serves its status page to curl', async () => {
    const result = await lab.exec('curl', ['-sS', '--max-time', '30', `http://${LAB_STACK_ADDRESS}/`], { timeoutMs: 40_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('<h1>spinet');
  }, 60_000);

  it('echoes 1 MiB from the kernel hash-equal, and the board ran its receive program with the strict emulator silent', async () => {
    const data = testPattern(MIB, 3);
    const started = Date.now();
    const { echoed, stderr } = await kernelEcho(lab, data, 200);
    expect(echoed.length, stderr).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    expect(node.hal.stats.runsReported).toBeGreaterThan(0);
    expect(violations).toEqual([]);
    console.log(`1 MiB kernel ⇄ simulated Uno + W5500 echo in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 300_000);
});

describe.skipIf(skip)('the W5500 on the simulated Uno, with the Linux kernel as the peer, on a lossy cable (real time)', () => {
  let lab: Lab;
  let lan: ImpairedLan;
  let node: SimNode<W5500Nic>;
  const violations: string[] = [];

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    lan = new ImpairedLan(clock, { seed: 17 });
    // The chip's own cable loses, reorders and duplicates frames each way, as in the mock board's run.
    const impairment = { loss: 0.02, reorder: 0.02, duplicate: 0.01, reorderHoldMs: 2 };
    lan.impair('w5500', { toPort: impairment, fromPort: impairment });
    lab.tap.attachTo(lan);
    node = await createSimNode({ clock, lan, random: new CryptoRandom(), chip: 'w5500', onStrictViolation: (m) => violations.push(m) });
    await startTcpService(node.net, 'echo', 7);
  });

  afterAll(async () => {
    await node?.close();
    await lab?.close();
  });

  it('echoes 512 KiB from the kernel hash-equal, recovering every lost segment, the strict emulator silent', async () => {
    const data = testPattern(LOSSY_BYTES, 5);
    const started = Date.now();
    const { echoed, stderr } = await kernelEcho(lab, data, 200);
    expect(echoed.length, stderr).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    const stats = lan.impairmentStats('w5500')!;
    expect(stats.toPort.lost + stats.fromPort.lost).toBeGreaterThan(0);
    expect(stats.toPort.reordered + stats.fromPort.reordered).toBeGreaterThan(0);
    expect(violations).toEqual([]);
    console.log(`${LOSSY_BYTES >> 10} KiB kernel ⇄ simulated Uno + W5500 echo on a lossy cable in ${((Date.now() - started) / 1000).toFixed(1)} s (lost ${stats.toPort.lost} + ${stats.fromPort.lost} frames)`);
  }, 300_000);
});
