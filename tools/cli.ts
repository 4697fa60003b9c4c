#!/usr/bin/env node
/**
 * spinet — the command line. Each command is a small function over the library; the option table
 * in options.ts is the one source of both parsing and --help.
 */
import { readFileSync } from 'node:fs';
import { CHIP_OPTION, formatOptions, NODE_OPTIONS, parseCommandLine, UsageError, type OptionSpec } from './options.js';
import { CONSOLE_OPTION } from './console/index.js';

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: readonly OptionSpec[];
  readonly details?: string;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

const SERVE_OPTION: OptionSpec = {
  name: 'serve',
  type: 'string',
  value: 'SVC',
  multiple: true,
  help: 'run a service (repeatable): echo:7 (UDP and TCP), discard:9, chargen:19, http:80 (status page)',
};

const JSON_OPTION: OptionSpec = { name: 'json', type: 'boolean', help: 'print the result as one JSON object on stdout' };

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'the built-in demo: a simulated Uno with an ENC28J60 on a simulated LAN (what `npm start` runs)',
    usage: 'spinet start [--board sim|mock|virtual] [--chip enc28j60|w5500|auto] [--http-port N] [--echo-port N]',
    options: [
      { name: 'board', type: 'string', value: 'KIND', default: 'sim', help: 'sim (the real sketch in an AVR emulator), mock or virtual' },
      CHIP_OPTION,
      { name: 'http-port', type: 'string', value: 'N', help: 'local 127.0.0.1 port forwarded to the board\'s status page (default 8080, or a free one when 8080 is taken; 0: any free port)' },
      { name: 'echo-port', type: 'string', value: 'N', help: 'local 127.0.0.1 port forwarded to the board\'s TCP echo (default 8007, or a free one when 8007 is taken; 0: any free port)' },
      { name: 'pcap', type: 'string', value: 'FILE', help: 'write every frame to a pcapng file' },
      { name: 'log', type: 'string', value: 'FMT', default: 'none', help: 'log every frame to stderr: text, json or none' },
      CONSOLE_OPTION,
    ],
    details: 'The board takes a DHCP lease from a gateway node on the simulated LAN, resolves the gateway by name,\npings it, and serves its status page and TCP echo, forwarded to 127.0.0.1. No hardware, no root.',
    run: async (v) => (await import('./commands/start.js')).start(v),
  },
  run: {
    summary: 'run the stack on a board until Ctrl-C',
    usage: 'spinet run [options]',
    options: [...NODE_OPTIONS, SERVE_OPTION, CONSOLE_OPTION, { name: 'json', type: 'boolean', help: 'print the tables at exit as one JSON object' }],
    run: async (v) => (await import('./commands/run.js')).run(v),
  },
  log: {
    summary: 'print every frame that crosses the board\'s link, live, like tcpdump (or pcapng with -w)',
    usage: 'spinet log [options] [FILTER]',
    options: [
      ...NODE_OPTIONS.filter((o) => o.name !== 'log' && o.name !== 'pcap'),
      { name: 'verbose', short: 'v', type: 'boolean', help: 'each layer\'s fields under the frame\'s line' },
      { name: 'hex', short: 'x', type: 'boolean', help: 'the frame\'s bytes in hex under its line' },
      { name: 'count', short: 'c', type: 'string', value: 'N', help: 'stop after N frames (that pass the filter)' },
      { name: 'write', short: 'w', type: 'string', value: 'FILE', help: 'write pcapng to FILE instead of printing; - for stdout (spinet log -w - | wireshark -k -i -)' },
      { name: 'promisc', type: 'boolean', help: 'turn the chip\'s receive filter off: frames between other hosts are logged too (the stack still ignores them)' },
      SERVE_OPTION,
    ],
    details:
      'FILTER, like tcpdump\'s: host A, src host A, dst host A, net A/N, port N, src/dst port N, ether host MAC,\n' +
      'tcp, udp, icmp, arp, ip, broadcast, multicast; combined with and, or, not and parentheses\n' +
      '(e.g. spinet log --board sim "tcp and port 80" or spinet log icmp or arp).',
    run: async (v, p) => (await import('./commands/log.js')).log(v, p),
  },
  extcap: {
    summary: 'Wireshark\'s extcap interface: spinet boards as Wireshark capture interfaces (install: spinet extcap --install)',
    usage: 'spinet extcap --install   |   spinet extcap --extcap-interfaces   (the rest is how Wireshark calls it)',
    options: [
      { name: 'install', type: 'boolean', help: 'put the launcher into your Wireshark extcap folders (~/.config/wireshark/extcap and ~/.local/lib/wireshark/extcap)' },
      { name: 'extcap-interfaces', type: 'boolean', help: 'list the interfaces' },
      { name: 'extcap-version', type: 'string', value: 'V', help: 'the Wireshark version asking' },
      { name: 'extcap-interface', type: 'string', value: 'IF', help: 'spinet-sim, spinet-mock, spinet-mock-w5500 or spinet-serial' },
      { name: 'extcap-dlts', type: 'boolean', help: 'the interface\'s link type' },
      { name: 'extcap-config', type: 'boolean', help: 'the interface\'s options' },
      { name: 'extcap-reload-option', type: 'string', value: 'ARG', help: 'refresh one option\'s values' },
      { name: 'extcap-capture-filter', type: 'string', value: 'FILTER', help: 'capture filter (spinet log\'s language); without --capture: check it' },
      { name: 'extcap-control-in', type: 'string', value: 'PATH', help: 'Wireshark\'s control pipe (not used)' },
      { name: 'extcap-control-out', type: 'string', value: 'PATH', help: 'Wireshark\'s control pipe (not used)' },
      { name: 'capture', type: 'boolean', help: 'capture into --fifo until stopped' },
      { name: 'fifo', type: 'string', value: 'PATH', help: 'where the pcapng stream goes' },
      { name: 'debug', type: 'boolean', help: 'accepted for Wireshark' },
      { name: 'debug-file', type: 'string', value: 'PATH', help: 'accepted for Wireshark' },
      { name: 'port', type: 'string', value: 'PATH', help: 'spinet-serial: the board\'s serial port' },
      { name: 'baud', type: 'string', value: 'N', help: 'spinet-serial: serial speed' },
      { name: 'ip', type: 'string', value: 'A/N', help: 'static address (default: DHCP)' },
      { name: 'promisc', type: 'boolean', help: 'the chip\'s receive filter off' },
    ],
    run: async (v) => (await import('./commands/extcap.js')).extcap(v),
  },
  ping: {
    summary: 'send ICMP echo requests from the board and print round-trip times',
    usage: 'spinet ping HOST [options]',
    options: [
      ...NODE_OPTIONS,
      { name: 'count', short: 'c', type: 'string', value: 'N', default: '4', help: 'number of echo requests' },
      { name: 'size', short: 's', type: 'string', value: 'BYTES', default: '56', help: 'payload size (above the MTU the datagram is fragmented)' },
      { name: 'interval', short: 'i', type: 'string', value: 'SEC', default: '1', help: 'seconds between requests' },
      JSON_OPTION,
    ],
    run: async (v, p) => (await import('./commands/ping.js')).ping(v, p),
  },
  get: {
    summary: 'HTTP(S) GET through spinet; the body goes to stdout',
    usage: 'spinet get URL [--ca FILE] [options]',
    options: [...NODE_OPTIONS, { name: 'ca', type: 'string', value: 'FILE', help: 'with https://: also trust this CA certificate (PEM), e.g. a private CA' }],
    run: async (v, p) => (await import('./commands/get.js')).get(v, p),
  },
  resolve: {
    summary: 'resolve a name through the board\'s DNS resolver',
    usage: 'spinet resolve NAME [options]',
    options: [...NODE_OPTIONS, JSON_OPTION],
    run: async (v, p) => (await import('./commands/resolve.js')).resolve(v, p),
  },
  sim: {
    summary: 'run the simulated board and expose its serial port as a pseudo-terminal',
    usage: 'spinet sim --pty PATH [--board-def uno] [--chip enc28j60|w5500] [--lan sim|tap:IF] [--model]',
    options: [
      { name: 'chip', type: 'string', value: 'CHIP', default: 'enc28j60', help: 'the emulated chip on the board\'s SPI pins: enc28j60 or w5500' },
      { name: 'pty', type: 'string', value: 'PATH', help: 'where to create the pseudo-terminal (a symlink), e.g. /tmp/spinet-uno' },
      { name: 'board-def', type: 'string', value: 'NAME', default: 'uno', help: 'board definition (boards/NAME.json)' },
      { name: 'lan', type: 'string', value: 'LAN', default: 'sim', help: 'what the emulated chip\'s cable plugs into: sim or tap:IFNAME' },
      { name: 'tap-addr', type: 'string', value: 'A/N', help: 'with --lan tap:IF, the Linux side\'s address' },
      { name: 'mac', type: 'string', value: 'MAC', help: 'the emulated chip\'s MAC address' },
      { name: 'bootloader', type: 'boolean', help: 'emulate optiboot for 1 s after each open, so avrdude (spinet flash) can upload' },
      { name: 'model', type: 'boolean', help: 'the sketch\'s TypeScript model instead of avr8js: the bridge protocol at 1 Mbaud with no AVR timing, a board that keeps up on a loaded machine' },
    ],
    run: async (v) => (await import('./commands/sim.js')).sim(v),
  },
  ports: {
    summary: 'list serial ports (USB vendor:product) and which answer as a spinet bridge, with its protocol version',
    usage: 'spinet ports [PATH…] [--json]',
    options: [
      JSON_OPTION,
      { name: 'timeout', type: 'string', value: 'SEC', default: '4', help: 'how long to wait for each port\'s bridge HELLO' },
    ],
    details: 'Ports come from serialport\'s SerialPort.list(), or are the PATHs given. Each is opened to ask for the\nbridge sketch, which resets an Arduino as any serial monitor does. Exit 0 when a bridge answered.',
    run: async (v, p) => (await import('./commands/ports.js')).ports(v, p),
  },
  doctor: {
    summary: 'check a real board\'s wiring step by step and say what to fix',
    usage: 'spinet doctor --port PATH [--chip enc28j60|w5500|auto] [--baud N] [--json]',
    options: [
      { name: 'port', type: 'string', value: 'PATH', help: 'serial port of the board, e.g. /dev/ttyACM0' },
      { name: 'chip', type: 'string', value: 'CHIP', default: 'auto', help: 'the Ethernet chip: enc28j60, w5500, or auto (the one that answers)' },
      { name: 'baud', type: 'string', value: 'N', help: 'serial speed (default 1000000)' },
      { name: 'json', type: 'boolean', help: 'print the checks as JSON' },
      { name: 'mac', type: 'string', value: 'MAC', help: 'station address for the DHCP check (default 02:5e:00:00:00:0a)' },
      { name: 'no-network', type: 'boolean', help: 'stop after the link check (no DHCP lease, no ping)' },
      { name: 'no-reset', type: 'boolean', help: 'the chip\'s reset is not wired to D9 (the Ethernet Shield 2 ties it to the board\'s reset): skip the reset check' },
    ],
    details:
      'In order, stopping at the first failure: the board answers (else: flash it); SPI reads the chip\'s ID\n' +
      '(ENC28J60 EREVID, W5500 VERSIONR; all 0xFF or 0x00 names MISO, CS, power); buffer memory patterns read\n' +
      'back (names SCK/MOSI with the error rate); INT falls when the chip raises it; the reset line resets it;\n' +
      'the PHY sees a link (on the W5500 the link comes before INT: its interrupt needs a frame sent); then the\n' +
      'driver and stack take a DHCP lease and ping the gateway it names.',
    run: async (v) => (await import('./commands/doctor.js')).doctor(v),
  },
  flash: {
    summary: 'build (when a toolchain is present) and upload the bridge sketch with avrdude',
    usage: 'spinet flash --board uno --port PATH [--dry-run]',
    options: [
      { name: 'board', type: 'string', value: 'NAME', default: 'uno', help: 'board definition: uno, nano, mega2560' },
      { name: 'port', type: 'string', value: 'PATH', help: 'serial port of the board' },
      { name: 'hex', type: 'string', value: 'FILE', help: 'upload this hex instead of the bridge sketch' },
      { name: 'no-build', type: 'boolean', help: 'use the committed hex even when avr-gcc is installed' },
      { name: 'dry-run', type: 'boolean', help: 'print what would be run, run nothing' },
    ],
    details:
      'Without --port (or with an unknown --board): the serial ports found, the board each looks like by its USB\n' +
      'vendor:product and the --board to give. A bootloader that does not answer within 7 s ends it with the likely\n' +
      'reason and avrdude\'s own last lines; Ctrl-C stops avrdude before spinet exits (130), so the port is free.',
    run: async (v) => (await import('./commands/flash.js')).flash(v),
  },
};

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    'spinet — a host-driven TCP/IP stack for the ENC28J60 over a serial SPI bridge',
    '',
    'Usage: spinet COMMAND [options]      spinet COMMAND --help      spinet --version',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`),
  ].join('\n');
}

function commandHelp(name: string, command: Command): string {
  return [`Usage: ${command.usage}`, '', command.summary + '.', ...(command.details ? ['', command.details] : []), '', 'Options:', formatOptions(command.options)].join('\n');
}

/** spinet's version, from the package.json above this file (tools/ in a checkout, dist/tools/ installed). */
function version(): string {
  for (let dir = new URL('./', import.meta.url); dir.pathname !== '/'; dir = new URL('../', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'spinet') return pkg.version ?? 'unknown';
    } catch {
      // not here: one folder up
    }
  }
  return 'unknown';
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`spinet ${version()}`);
    return 0;
  }
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(mainHelp());
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`spinet: unknown command '${name}' (see \`spinet --help\`)`);
    return 2;
  }
  try {
    const { values, positionals } = parseCommandLine(rest, command.options);
    if (values.help) {
      console.log(commandHelp(name, command));
      return 0;
    }
    if (values.pcap === '-' && name !== 'run') throw new UsageError(`--pcap - streams the capture to stdout, where spinet ${name} prints its result: use --pcap FILE (or spinet run --pcap -)`);
    // SPINET_PORT stands for --port (a real board) where the command takes one and none was given.
    const envPort = process.env.SPINET_PORT;
    if (envPort && values.port === undefined && command.options.some((o) => o.name === 'port') && (values.board === undefined || values.board === 'serial' || name === 'flash')) values.port = envPort;
    // --port auto: the one port where the bridge sketch answers.
    if (values.port === 'auto' && name !== 'flash') values.port = await (await import('./commands/ports.js')).autoPort();
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`spinet ${name}: ${error.message} (see \`spinet ${name} --help\`)`);
      return 2;
    }
    const e = error as Error & { code?: string; hint?: unknown };
    // One line: the cause, and what to do when the error knows (a FlashError's hint).
    const hint = typeof e.hint === 'string' && !e.message.includes(e.hint) ? `: ${e.hint}` : '';
    console.error(`spinet ${name}: ${e.code ? `${e.code}: ` : ''}${e.message}${hint}`);
    // Under it, the failed tool's own last lines (avrdude's, make's), indented: its words, not ours.
    const toolOutput = (e as { details?: { output?: unknown } }).details?.output;
    if (typeof toolOutput === 'string' && toolOutput) console.error(toolOutput.replace(/^/gm, '    '));
    if (process.env.SPINET_DEBUG) console.error(e.stack);
    return 1;
  }
}

const exitCode = await main(process.argv.slice(2));
// Exit explicitly: a finished command must not linger on a stack timer or an open handle.
process.stdout.write('', () => process.exit(exitCode));
