import { parseIpv4 } from '../../src/wire/address.js';
import type { VirtualClock } from '../../src/time/virtual-clock.js';
import { createNet, type Net } from '../../src/socket/net.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import { TestNetwork, type NetworkFaults } from './harness.js';

export const SERVER = '192.0.2.1';
export const CLIENT = '192.0.2.2';

/** Let process.nextTick, promises and immediates run (Node streams need all three). */
export async function settle(rounds = 2): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advance virtual time by `ms`, firing timers in order and letting streams react between them. */
export async function runFor(clock: VirtualClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  await settle();
  for (;;) {
    const next = clock.nextDeadline();
    if (next === undefined || next > end) break;
    clock.advanceTo(next);
    await settle(1);
  }
  clock.advanceTo(end);
  await settle();
}

/** Advance until `done()` or `limitMs` passes. */
export async function runUntil(clock: VirtualClock, done: () => boolean, limitMs = 600_000): Promise<void> {
  const end = clock.now() + limitMs;
  await settle();
  while (!done()) {
    const next = clock.nextDeadline();
    if (next === undefined || next > end) {
      await settle();
      if (done()) return;
      if (next === undefined || next > end) break;
    }
    clock.advanceTo(next);
    await settle(1);
  }
}

export function twoHosts(faults: NetworkFaults = { delay: 1 }, options: Partial<TcpOptions> = {}, seed = 1): { network: TestNetwork; clock: VirtualClock; serverNet: Net; clientNet: Net } {
  const network = new TestNetwork(faults, seed);
  const serverTcp = network.addHost(parseIpv4(SERVER), options);
  const clientTcp = network.addHost(parseIpv4(CLIENT), options);
  return { network, clock: network.clock, serverNet: createNet(serverTcp), clientNet: createNet(clientTcp) };
}
