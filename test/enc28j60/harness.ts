import { createMockEnc28j60Board, type MockEnc28j60Board } from '../../tools/boards.js';
import type { LinkModel } from '../../hal/mock/mock-hal.js';
import type { Enc28j60Options } from '../../src/drivers/enc28j60/options.js';
import type { MockEnc28j60BoardOptions } from '../../tools/boards.js';
import { virtualBench, type VirtualBench } from '../support/virtual-bench.js';

export { MAC_PEER } from '../support/virtual-bench.js';
export const MAC_A = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x0a);
export const MAC_B = Uint8Array.of(0x02, 0x5e, 0x00, 0x00, 0x00, 0x0b);

/** A serial bridge at 1 Mbaud with 1 ms turnaround (a USB-serial Arduino, roughly). */
export const BRIDGE_LINK: LinkModel = { bytesPerSecond: 100_000, turnaroundMs: 1 };

export interface Station {
  board: MockEnc28j60Board;
  received: Uint8Array[];
  links: boolean[];
}

export interface Bench extends VirtualBench {
  station(mac: Uint8Array, name: string, options?: { linkModel?: LinkModel; driverOptions?: Partial<Enc28j60Options>; chip?: MockEnc28j60BoardOptions['chip'] }): Station;
}

/** `defaults`: driver options every station gets (a station's own options win). */
export function bench(defaults: Partial<Enc28j60Options> = {}): Bench {
  const b = virtualBench();
  return {
    ...b,
    station(mac, name, options = {}) {
      const board = createMockEnc28j60Board({
        clock: b.clock,
        lan: b.lan,
        mac,
        name,
        linkModel: options.linkModel,
        driverOptions: { ...defaults, ...options.driverOptions },
        // A driver set to full duplex is on a switch port forced to full duplex, unless a test says otherwise.
        chip: { ...(options.driverOptions?.fullDuplex ?? defaults.fullDuplex ? { linkPartner: 'full-duplex' as const } : {}), ...options.chip },
        strict: true,
        onStrictViolation: (message) => b.violations.push(message),
      });
      const received: Uint8Array[] = [];
      const links: boolean[] = [];
      board.nic.attach({ receive: (frame) => received.push(Uint8Array.from(frame)), linkChange: (up) => links.push(up) });
      return { board, received, links };
    },
  };
}
