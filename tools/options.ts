/**
 * The command line's options: one table that both the parser (node:util parseArgs) and `--help`
 * are made from, so the help cannot drift from what is accepted.
 */
import { parseArgs } from 'node:util';
import { compileFilter, FilterError, type FramePredicate } from '../src/capture/filter.js';

export interface OptionSpec {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  readonly value?: string;
  readonly help: string;
  readonly default?: string;
  readonly multiple?: boolean;
  readonly short?: string;
}

/** `--chip`: shared by the node commands and `start`. */
export const CHIP_OPTION: OptionSpec = {
  name: 'chip',
  type: 'string',
  value: 'CHIP',
  help: 'Ethernet chip behind the board: enc28j60 or w5500 (default enc28j60 on mock and sim, where it is also the emulated chip), or auto: probe which one answers (sim, serial; the default on serial)',
};

/** Where the stack runs and what its cable plugs into: shared by run, ping, get, resolve. */
export const NODE_OPTIONS: readonly OptionSpec[] = [
  { name: 'board', type: 'string', value: 'KIND', help: 'virtual (a NIC straight on the LAN), mock (driver → mock HAL → emulated chip), sim (the bridge sketch in an AVR emulator), serial (a real board on --port); default: serial with --port (or SPINET_PORT), else virtual' },
  CHIP_OPTION,
  { name: 'port', type: 'string', value: 'PATH', help: 'serial port of a real board, e.g. /dev/ttyACM0, or auto: the one where the bridge sketch answers (implies --board serial; SPINET_PORT in the environment stands for it)' },
  { name: 'baud', type: 'string', value: 'N', help: "serial speed (default: the board definition's, 1000000)" },
  { name: 'lan', type: 'string', value: 'LAN', default: 'sim', help: 'sim (built-in LAN with a gateway node at 192.0.2.1 serving DHCP, DNS, ping, echo, HTTP and MQTT) or tap:IFNAME (a Linux TAP device, needs root)' },
  { name: 'tap-addr', type: 'string', value: 'A/N', help: 'with --lan tap:IF, give the Linux side of the TAP this address' },
  { name: 'ip', type: 'string', value: 'A/N', help: 'static address, e.g. 192.0.2.10/24 (default with --lan sim: 192.0.2.10/24)' },
  { name: 'gateway', type: 'string', value: 'A', help: 'default gateway' },
  { name: 'dns', type: 'string', value: 'A', help: 'DNS server (repeatable)', multiple: true },
  { name: 'dhcp', type: 'boolean', help: 'take the address, gateway and DNS servers from DHCP' },
  { name: 'hostname', type: 'string', value: 'NAME', help: 'host name sent in DHCP requests' },
  { name: 'lease-file', type: 'string', value: 'PATH', help: 'with --dhcp: remember the lease in PATH and ask for it again at the next start (INIT-REBOOT); the lease is then kept, not released, on Ctrl-C' },
  { name: 'mac', type: 'string', value: 'MAC', help: 'MAC address (default: a fixed locally administered one)' },
  { name: 'log', type: 'string', value: 'FMT', default: 'none', help: 'log every frame: text, json (JSON lines) or none; to stderr, and for spinet run to stdout (stderr with --pcap -)' },
  { name: 'pcap', type: 'string', value: 'FILE', help: 'write every frame to a pcapng file (open it in Wireshark); - for stdout: spinet run --pcap - | wireshark -k -i -' },
];

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', help: 'show this help' };

export function parseCommandLine(args: string[], specs: readonly OptionSpec[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const spec of [...specs, HELP_OPTION]) {
    options[spec.name] = { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    // Copied field by field rather than cast: @types/node has typed parseArgs' values more than one
    // way (a repeatable option as string[] or as (string | boolean)[]), and CI once saw the other.
    const withDefaults: Record<string, string | boolean | string[] | undefined> = {};
    for (const [key, value] of Object.entries(values)) withDefaults[key] = Array.isArray(value) ? value.map(String) : value;
    for (const spec of specs) if (withDefaults[spec.name] === undefined && spec.default !== undefined) withDefaults[spec.name] = spec.default;
    return { values: withDefaults, positionals };
  } catch (error) {
    const e = error as Error & { code?: string };
    // node:util's own text is a paragraph; the option is all the user needs to see.
    const unknown = /^Unknown option '([^']+)'/.exec(e.message);
    throw new UsageError(unknown ? `unknown option ${unknown[1]}` : e.message);
  }
}

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export function formatOptions(specs: readonly OptionSpec[]): string {
  const rows = [...specs, HELP_OPTION].map((s) => {
    const flag = `${s.short ? `-${s.short}, ` : ''}--${s.name}${s.value ? ` ${s.value}` : ''}`;
    const def = s.default !== undefined ? ` (default: ${s.default})` : '';
    return [flag, s.help + def] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n');
}

/** A capture filter from the command line's words (`spinet log tcp and port 80`), or a usage error saying where it is wrong. */
export function parseFilter(words: readonly string[]): { expression: string; predicate: FramePredicate } {
  const expression = words.join(' ').trim();
  try {
    return { expression, predicate: compileFilter(expression) };
  } catch (error) {
    if (error instanceof FilterError) throw new UsageError(`filter "${expression}": ${error.message} (at character ${error.position + 1})`);
    throw error;
  }
}
