import { expect } from 'vitest';
import { createMockEnc28j60Board, type MockEnc28j60Board } from '../../tools/boards.js';
import type { LinkModel } from '../../hal/mock/mock-hal.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { Enc28j60Options } from '../../src/drivers/enc28j60/options.js';

export const MAC_A = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x0a);
export const MAC_B = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x0b);
export const MAC_PEER = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x99);

/** A serial bridge at 1 Mbaud with 1 ms turnaround (a USB-serial Arduino, roughly). */
export const BRIDGE_LINK: LinkModel = { bytesPerSecond: 100_000, turnaroundMs: 1 };

export interface Station {
  board: MockEnc28j60Board;
  received: Uint8Array[];
  links: boolean[];
}

export interface Bench {
  clock: VirtualClock;
  lan: VirtualLan;
  violations: string[];
  station(mac: Uint8Array, name: string, options?: { linkModel?: LinkModel; driverOptions?: Partial<Enc28j60Options> }): Station;
  peer(mac?: Uint8Array): { nic: VirtualNic; received: Uint8Array[] };
  /** Advance virtual time until `promise` settles (or fail after `limitMs`). */
  settle<T>(promise: Promise<T>, limitMs?: number): Promise<T>;
  run(ms: number, stepMs?: number): Promise<void>;
  /** Advance until `predicate` holds (or fail after `limitMs`). */
  until(predicate: () => boolean, limitMs?: number, stepMs?: number): Promise<void>;
  /** Strict mode: any driver misuse the chip would punish fails the test. */
  expectNoViolations(): void;
}

/** `defaults`: driver options every station gets (a station's own options win). */
export function bench(defaults: Partial<Enc28j60Options> = {}): Bench {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const violations: string[] = [];
  const b: Bench = {
    clock,
    lan,
    violations,
    station(mac, name, options = {}) {
      const board = createMockEnc28j60Board({
        clock,
        lan,
        mac,
        name,
        linkModel: options.linkModel,
        driverOptions: { ...defaults, ...options.driverOptions },
        strict: true,
        onStrictViolation: (message) => violations.push(message),
      });
      const received: Uint8Array[] = [];
      const links: boolean[] = [];
      board.nic.attach({ receive: (frame) => received.push(Uint8Array.from(frame)), linkChange: (up) => links.push(up) });
      return { board, received, links };
    },
    peer(mac = MAC_PEER) {
      const nic = new VirtualNic(lan, mac);
      const received: Uint8Array[] = [];
      nic.attach({ receive: (frame) => received.push(Uint8Array.from(frame)), linkChange: () => {} });
      void nic.start();
      return { nic, received };
    },
    async settle(promise, limitMs = 5_000) {
      let done = false;
      let failed = false;
      let value: unknown;
      promise.then(
        (v) => {
          done = true;
          value = v;
        },
        (e: unknown) => {
          failed = true;
          value = e;
        },
      );
      const end = clock.now() + limitMs;
      while (!done && !failed && clock.now() < end) await clock.advanceAsync(0.5);
      if (failed) throw value;
      if (!done) throw new Error(`did not settle within ${limitMs} ms of virtual time`);
      return value as Awaited<typeof promise>;
    },
    async run(ms, stepMs = 0.5) {
      const end = clock.now() + ms;
      while (clock.now() < end) await clock.advanceAsync(Math.min(stepMs, end - clock.now()));
    },
    async until(predicate, limitMs = 5_000, stepMs = 0.5) {
      const end = clock.now() + limitMs;
      while (!predicate()) {
        if (clock.now() >= end) throw new Error(`condition not met within ${limitMs} ms of virtual time`);
        await clock.advanceAsync(stepMs);
      }
    },
    expectNoViolations() {
      expect(violations).toEqual([]);
    },
  };
  return b;
}
