import { createHash } from 'node:crypto';
import { waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import type { Net } from '../../src/socket/net.js';

/** Write `data` to a kernel echo server (socat PIPE on 192.0.2.1:8080) over spinet's TCP and collect the echo. */
export async function echoThroughKernel(lab: Lab, net: Net, data: Uint8Array): Promise<Buffer> {
  // -b 4096 (≤ PIPE_BUF): socat reads and writes its one pipe itself, and a larger block can
  // block it on the full pipe it alone drains — the kernel then shows a zero window for good.
  lab.spawn('socat', ['-b', '4096', 'TCP4-LISTEN:8080,bind=192.0.2.1,reuseaddr', 'PIPE']);
  await waitFor(async () => (await lab.exec('ss', ['-Hltn', 'sport = :8080'])).stdout.includes('8080'), 5_000, 'socat on :8080');
  const received: Buffer[] = [];
  let receivedBytes = 0;
  const socket = net.createConnection(8080, LAB_HOST_ADDRESS);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received.push(Buffer.from(chunk));
      receivedBytes += chunk.length;
      if (receivedBytes >= data.length) resolve();
    });
    socket.on('error', reject);
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(Buffer.from(data));
  await done;
  socket.end();
  return Buffer.concat(received);
}

export const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** Bytes that are not all alike, and differ from one KiB to the next. */
export const pattern = (length: number) => new Uint8Array(length).map((_, i) => (i * 31 + (i >>> 10)) & 0xff);

/** socat in the namespace: send `data` to the board's TCP echo (port 7), return what came back. */
export async function kernelEcho(lab: Lab, data: Uint8Array, timeoutS: number): Promise<{ echoed: Buffer; stderr: string }> {
  const child = lab.spawn('socat', ['-t', String(timeoutS), '-T', String(timeoutS), '-', `TCP:${LAB_STACK_ADDRESS}:7`]);
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // socat gone early (the lab closed under a test that timed out): what came back says how far it got.
  child.stdin!.on('error', (error: Error) => (stderr += `stdin: ${error.message}\n`));
  child.stdin!.end(Buffer.from(data));
  await exited;
  return { echoed: Buffer.concat(out), stderr };
}
