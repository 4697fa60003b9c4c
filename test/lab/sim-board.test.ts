/**
 * The simulated board against the Linux kernel, in real time: spinet's Stack on the ENC28J60
 * driver → BridgeHal → the committed sketch in avr8js (paced to 16 MHz of wall time) → the emulated
 * ENC28J60 → a VirtualLan bridged to a TAP in a throw-away namespace, where the kernel (192.0.2.1)
 * pings the board, curls its status page and pushes 1 MiB through its TCP echo — then again while
 * the serial link corrupts bytes and the USB port is unplugged and plugged back in.
 * Needs root, /dev/net/tun, socat, curl, ping (skipped with the reason otherwise).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, skipLabUnless, waitFor, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { kernelEcho } from './kernel-echo.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom, SeededRandom } from '../../src/time/random.js';
import type { HalEvent } from '../../src/drivers/hal.js';
import { startStatusPage } from '../../src/app/services/status-page.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { createSimNode, sha256, testPattern, type SimNode } from '../bridge/sim-node.js';

const skip = await skipLabUnless(['ping', 'socat', 'curl', 'ss']);
const MIB = 1 << 20;

describe.skipIf(skip)('the simulated Uno on a TAP, with the Linux kernel as the peer (real time)', () => {
  let lab: Lab;
  let node: SimNode;

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    node = await createSimNode({ clock, lan, random: new CryptoRandom() });
    await startStatusPage(node.net, 80, node.stack);
    await startTcpService(node.net, 'echo', 7);
  });

  afterAll(async () => {
    await node?.close();
    await lab?.close();
  });

  it('answers the kernel’s pings', async () => {
    const result = await lab.exec('ping', ['-c', '5', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(result.stdout).toMatch(/5 packets transmitted, 5 received/);
    const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(result.stdout)?.[1]);
    const rtts = [...result.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => m[1]).join(', ');
    console.log(`kernel → simulated Uno ping (16U2 link model, real time): ${rtts} ms (avg ${avg} ms)`);
  });

  it('serves its status page to curl', async () => {
    const result = await lab.exec('curl', ['-sS', '--max-time', '30', `http://${LAB_STACK_ADDRESS}/`], { timeoutMs: 40_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('<h1>spinet');
    expect(result.stdout).toContain(`<dt>Address</dt><dd>${LAB_STACK_ADDRESS}/24</dd><dt>Link</dt><dd class="up">up</dd>`);
    // The board's page says nothing about the host behind it (the console on 127.0.0.1 does).
    expect(result.stdout).not.toContain('/dev/ttySPINET0');
  }, 60_000);

  it('echoes 1 MiB from the kernel hash-equal', async () => {
    const data = testPattern(MIB, 3);
    const started = Date.now();
    const { echoed, stderr } = await kernelEcho(lab, data, 120);
    const seconds = (Date.now() - started) / 1000;
    expect(echoed.length, stderr).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    console.log(`1 MiB kernel ⇄ simulated Uno echo in ${seconds.toFixed(1)} s (${(MIB / 1024 / seconds).toFixed(1)} KiB/s each way); AVR ${(node.board.mcu.totalCycles / 1e6).toFixed(0)} Mcycles so far`);
    // A bound, not a speed target: avr8js runs at 10–44 M cycles/s depending on the machine (a
    // Uno needs 16 M for real time); 1 MiB took 92–152 s alone on the development VMs.
  }, 300_000);

  it('echoes 128 KiB hash-equal while the serial link corrupts bytes and the USB port is unplugged and back', async () => {
    const events: HalEvent[] = [];
    node.hal.onEvent((event) => events.push(event));
    const { faults } = node.board;
    faults.setRandom('host-to-board', { corrupt: 2e-5, random: new SeededRandom(21) });
    faults.setRandom('board-to-host', { corrupt: 2e-5, random: new SeededRandom(22) });
    const before = { ...node.board.link.stats };
    const data = testPattern(128 << 10, 4);
    const transfer = kernelEcho(lab, data, 120);
    await waitFor(() => node.board.link.stats.boardToHostBytes - before.boardToHostBytes > 60_000, 60_000, '60 kB through the bridge');
    faults.vanishPort({ powerOff: true });
    await new Promise((resolve) => setTimeout(resolve, 500));
    faults.reappearPort();
    const { echoed, stderr } = await transfer;
    faults.setRandom('host-to-board', undefined);
    faults.setRandom('board-to-host', undefined);
    expect(echoed.length, stderr).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    expect(events).toEqual([
      { type: 'link-lost', reason: expect.any(String) },
      { type: 'link-restored', boardReset: true },
    ]);
    const ping = await lab.exec('ping', ['-c', '1', '-W', '2', LAB_STACK_ADDRESS]);
    expect(ping.stdout).toMatch(/1 received/);
  }, 180_000);
});
