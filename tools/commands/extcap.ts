/**
 * `spinet extcap`: Wireshark's external capture interface (extcap(4)), so Wireshark lists spinet
 * boards beside its own interfaces and captures from them live. Wireshark runs the program it
 * finds in its extcap folder in steps:
 *
 *   --extcap-interfaces                              which interfaces exist
 *   --extcap-interface IF --extcap-dlts              their link type (Ethernet)
 *   --extcap-interface IF --extcap-config            the options its dialog shows
 *   --extcap-interface IF --extcap-capture-filter F  is F a filter we understand (exit 0 if so)
 *   --extcap-interface IF --capture --fifo PATH      capture: pcapng into PATH until stopped
 *
 * A capture stops on SIGTERM/SIGINT (how Wireshark and tshark end it) or when the reader closes
 * the FIFO. `spinet extcap --install` puts a two-line launcher into the user's extcap folders.
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFilter, UsageError } from '../options.js';
import type { Values } from '../node.js';

const VERSION = '0.1.0';

interface ExtcapInterface {
  readonly value: string;
  readonly display: string;
  /** What `openNode` gets for it. */
  readonly board: 'sim' | 'mock' | 'serial';
  readonly chip?: 'w5500';
}

export const EXTCAP_INTERFACES: readonly ExtcapInterface[] = [
  { value: 'spinet-sim', display: 'spinet: simulated Uno with an ENC28J60 on the built-in LAN', board: 'sim' },
  { value: 'spinet-mock', display: 'spinet: emulated ENC28J60 (mock HAL) on the built-in LAN', board: 'mock' },
  { value: 'spinet-mock-w5500', display: 'spinet: emulated W5500 (mock HAL) on the built-in LAN', board: 'mock', chip: 'w5500' },
  { value: 'spinet-serial', display: 'spinet: a board on a serial port (choose it in the interface options)', board: 'serial' },
];

/** Serial ports that may be boards (USB CDC and USB-serial chips), for the options dialog. */
async function serialPorts(): Promise<{ path: string; label: string }[]> {
  try {
    const { SerialPort } = await import('serialport');
    const ports = await SerialPort.list();
    return ports
      .filter((p) => /ttyACM|ttyUSB|cu\.usb|COM\d/.test(p.path))
      .map((p) => ({ path: p.path, label: [p.path, p.manufacturer, p.vendorId && p.productId ? `${p.vendorId}:${p.productId}` : ''].filter(Boolean).join(' ') }));
  } catch {
    return [];
  }
}

function find(name: unknown): ExtcapInterface {
  const found = EXTCAP_INTERFACES.find((i) => i.value === name);
  if (!found) throw new UsageError(`--extcap-interface ${String(name)}: not a spinet interface (${EXTCAP_INTERFACES.map((i) => i.value).join(', ')})`);
  return found;
}

/** The lines of `--extcap-config` for an interface. */
export async function extcapConfig(iface: ExtcapInterface): Promise<string[]> {
  const lines: string[] = [];
  let n = 0;
  if (iface.board === 'serial') {
    const ports = await serialPorts();
    if (ports.length > 0) {
      lines.push(`arg {number=${n}}{call=--port}{display=Serial port}{type=selector}{required=true}{tooltip=The board's serial port (the bridge sketch answers on it)}`);
      ports.forEach((p, i) => lines.push(`value {arg=${n}}{value=${p.path}}{display=${p.label}}${i === 0 ? '{default=true}' : ''}`));
    } else {
      lines.push(`arg {number=${n}}{call=--port}{display=Serial port}{type=string}{required=true}{tooltip=e.g. /dev/ttyACM0}`);
    }
    n++;
    lines.push(`arg {number=${n++}}{call=--baud}{display=Baud rate}{type=integer}{default=1000000}`);
  }
  lines.push(`arg {number=${n++}}{call=--ip}{display=Static address A/N}{type=string}{tooltip=Empty: take the address from DHCP}`);
  lines.push(`arg {number=${n++}}{call=--promisc}{display=Promiscuous (the chip's receive filter off)}{type=boolflag}{default=false}`);
  return lines;
}

/** Write the launcher Wireshark runs into both personal extcap folders (Wireshark < 4.2 and ≥ 4.2). */
export function installExtcap(home = homedir(), configHome = process.env.XDG_CONFIG_HOME || join(home, '.config')): string[] {
  const spinet = fileURLToPath(new URL('../spinet.mjs', import.meta.url));
  const script = `#!/bin/sh\n# spinet boards as Wireshark capture interfaces (written by \`spinet extcap --install\`).\nexec "${process.execPath}" "${spinet}" extcap "$@"\n`;
  const written: string[] = [];
  for (const dir of [join(configHome, 'wireshark', 'extcap'), join(home, '.local', 'lib', 'wireshark', 'extcap')]) {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'spinet');
    writeFileSync(path, script, { mode: 0o755 });
    written.push(path);
  }
  return written;
}

export async function extcap(values: Values): Promise<number> {
  const say = (line: string) => process.stdout.write(line + '\n');
  if (values.install) {
    for (const path of installExtcap()) console.error(`installed ${path}`);
    console.error('Restart Wireshark (or run tshark -D): the spinet interfaces are listed with the others.');
    return 0;
  }
  if (values['extcap-interfaces']) {
    say(`extcap {version=${VERSION}}{display=spinet}`);
    for (const i of EXTCAP_INTERFACES) say(`interface {value=${i.value}}{display=${i.display}}`);
    return 0;
  }
  if (values['extcap-interface'] === undefined) throw new UsageError('give --extcap-interfaces, or --extcap-interface IF with --extcap-dlts, --extcap-config or --capture (Wireshark does), or --install');
  const iface = find(values['extcap-interface']);
  if (values['extcap-dlts']) {
    say(`dlt {number=1}{name=EN10MB}{display=Ethernet}`);
    return 0;
  }
  if (values['extcap-config']) {
    for (const line of await extcapConfig(iface)) say(line);
    return 0;
  }
  const filterText = typeof values['extcap-capture-filter'] === 'string' ? values['extcap-capture-filter'] : '';
  if (!values.capture) {
    // Wireshark asks whether a capture filter is valid: silence and 0 say yes.
    try {
      parseFilter([filterText]);
      return 0;
    } catch (error) {
      say((error as Error).message);
      return 1;
    }
  }
  const fifo = values.fifo;
  if (typeof fifo !== 'string') throw new UsageError('--capture needs --fifo PATH');
  const { predicate } = parseFilter([filterText]);
  // Only a capture needs the stack: Wireshark's other questions stay quick.
  const { openNode, untilInterrupted } = await import('../node.js');
  const { FilterSink } = await import('../../src/capture/sinks.js');
  const { PcapngWriter } = await import('../../src/capture/pcapng.js');
  const { StreamSink } = await import('../../src/capture/file-sink.js');
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  const pcap = new PcapngWriter(new StreamSink(createWriteStream(fifo), () => stop('the FIFO was closed')), { application: `spinet ${VERSION} (extcap)` });
  const frames = new FilterSink(predicate, [pcap]);
  const ip = typeof values.ip === 'string' && values.ip.trim() ? values.ip.trim() : undefined;
  const nodeValues: Values = {
    board: iface.board,
    ...(iface.chip ? { chip: iface.chip } : {}),
    ...(iface.board === 'serial' ? { port: values.port, ...(values.baud ? { baud: values.baud } : {}) } : { lan: 'sim' }),
    ...(ip ? { ip } : { dhcp: true }),
  };
  // Wireshark may stop the capture while the board is still starting (a DHCP lease takes seconds).
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const opening = openNode(nodeValues, (m) => console.error(m), { sinks: [frames], promiscuous: values.promisc === true });
  opening.catch(() => undefined); // a failure after a stop is nobody's business
  const node = await Promise.race([opening, stopped.then(() => undefined)]);
  if (!node) return 0; // the CLI exits: nothing of the half-started board outlives it
  try {
    await untilInterrupted(stopped);
  } finally {
    await node.close();
  }
  return 0;
}
