// johnny-five blinking an LED on the board's pin 8 while the stack keeps answering on the same
// serial link: node.io is the IO plugin (boards with the bridge sketch: sim or a real one).
import five from 'johnny-five';
import { openBoard } from 'spinet';

const node = await openBoard({ board: process.env.SPINET_PORT ? undefined : 'sim' });
const board = new five.Board({ io: node.io, repl: false, debug: false, sigint: false });
await new Promise((resolve) => board.once('ready', resolve));
const led = new five.Led(8);
led.blink(250);
for (let i = 1; i <= 5; i++) {
  const reply = await node.stack.ping('192.0.2.1', { timeoutMs: 5000 }).catch((error) => ({ error }));
  console.log(reply.error ? `ping ${i}: ${reply.error.code}` : `ping ${i} while blinking: ${reply.rttMs.toFixed(1)} ms`);
  await new Promise((resolve) => setTimeout(resolve, 500));
}
led.stop().off();
console.log('LED off');
await node.close();
