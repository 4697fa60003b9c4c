/**
 * The W5500 on the simulated Uno against the Linux kernel, in real time: spinet's Stack on the
 * W5500 driver → BridgeHal → the committed sketch in avr8js (its receive program armed) → the
 * strict W5500 emulator on its SPI pins → a VirtualLan bridged to a TAP in a throw-away namespace,
 * where the kernel (192.0.2.1) pings the board (small and fragmented), curls its status page and
 * pushes 256 KiB through its TCP echo. Needs root, /dev/net/tun, socat, curl, ping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, skipLabUnless, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { kernelEcho } from './kernel-echo.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import { startStatusPage } from '../../src/app/services/status-page.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { createSimNode, sha256, testPattern, type SimNode } from '../bridge/sim-node.js';

const skip = await skipLabUnless(['ping', 'socat', 'curl']);

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

  it('serves its status page to curl', async () => {
    const result = await lab.exec('curl', ['-sS', '--max-time', '30', `http://${LAB_STACK_ADDRESS}/`], { timeoutMs: 40_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('<h1>spinet');
  }, 60_000);

  it('echoes 256 KiB from the kernel hash-equal, and the board ran its receive program with the strict emulator silent', async () => {
    const data = testPattern(256 << 10, 3);
    const { echoed, stderr } = await kernelEcho(lab, data, 120);
    expect(echoed.length, stderr).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    expect(node.hal.stats.runsReported).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  }, 180_000);
});
