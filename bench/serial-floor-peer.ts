/**
 * The far end of the serial floor benchmark (bench/serial-floor.ts): a pseudo-terminal at PATH
 * (the same socat bridge `spinet sim --pty` serves a board through) that answers every message
 * from the host with the number of bytes the message asks for, after DELAY_MS (a USB-serial
 * chip's latency: the host goes idle between events as it does with a board).
 *
 * A message is [u16 its length][u16 the reply's length][filler], little-endian.
 *
 *   node --import tsx bench/serial-floor-peer.ts PATH DELAY_MS
 */
import { PtyBridge, type SerialTarget } from '../boards/bootloader/pty.js';

const [path, delayArg] = process.argv.slice(2);
if (!path) throw new Error('usage: serial-floor-peer.ts PATH [DELAY_MS]');
const delayMs = Number(delayArg ?? '1');

let listener: ((bytes: Uint8Array) => void) | undefined;
let pending = Buffer.alloc(0);

const reply = (length: number) => {
  const send = () => listener?.(Buffer.alloc(length, 0x55));
  if (delayMs > 0) setTimeout(send, delayMs);
  else send();
};

const target: SerialTarget = {
  open: () => {
    pending = Buffer.alloc(0);
  },
  write: (bytes) => {
    pending = pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([pending, bytes]);
    while (pending.length >= 4) {
      const length = pending.readUInt16LE(0);
      if (pending.length < length) break;
      reply(pending.readUInt16LE(2));
      pending = pending.subarray(length);
    }
  },
  onData: (l) => {
    listener = l;
    return () => (listener = undefined);
  },
};

const bridge = await PtyBridge.start(target, { path });
process.stderr.write('serial floor peer ready\n');
process.on('SIGINT', () => void bridge.close().then(() => process.exit(0)));
process.on('SIGTERM', () => void bridge.close().then(() => process.exit(0)));
