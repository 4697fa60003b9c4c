/** johnny-five (CommonJS, untyped): the few classes the tests use, typed here. */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';

export interface FiveBoard extends EventEmitter {
  readonly isReady: boolean;
}
export interface FiveLed {
  on(): this;
  off(): this;
  blink(ms: number): this;
  stop(): this;
  brightness(value: number): this;
}
export type FiveButton = EventEmitter;
export interface FiveSensor extends EventEmitter {
  readonly value: number;
}

export interface Five {
  Board: new (options: { io: unknown; repl: false; debug: false; sigint: false; timeout?: number }) => FiveBoard;
  Led: new (pin: number | { pin: number; board?: FiveBoard }) => FiveLed;
  Button: new (options: { pin: number | string; isPullup?: boolean; board?: FiveBoard }) => FiveButton;
  Sensor: new (options: { pin: number | string; freq?: number; board?: FiveBoard }) => FiveSensor;
}

export const five = createRequire(import.meta.url)('johnny-five') as Five;

export function boardReady(board: FiveBoard): Promise<void> {
  return new Promise((resolve, reject) => {
    board.once('ready', () => resolve());
    board.once('error', reject);
  });
}
