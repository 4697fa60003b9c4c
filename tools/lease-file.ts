/**
 * `--lease-file PATH`: the DHCP lease remembered across runs, so the next start asks for the same
 * address at once (RFC 2131 §3.2 INIT-REBOOT) instead of waiting out DISCOVER/OFFER and the start
 * delay. A small JSON file, written whenever the lease is granted or renewed.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { DhcpLease, RememberedLease } from '../src/app/dhcp/client.js';
import { rememberLease } from '../src/app/dhcp/client.js';
import { formatIpv4, formatMac, tryParseIpv4, type MacAddress } from '../src/wire/address.js';

interface LeaseFileV1 {
  readonly version: 1;
  /** The interface the lease is for: a file written for another MAC is not used. */
  readonly mac: string;
  readonly address: string;
  readonly prefixLength: number;
  readonly server: string;
  /** Unix ms; absent for an infinite lease. */
  readonly expiresAtEpochMs?: number;
}

/**
 * The lease in `path`, if there is one for this MAC that has not run out; otherwise undefined with
 * the reason (for the user), never an exception: a bad lease file must not stop the board.
 */
export function readLeaseFile(path: string, mac: MacAddress, nowEpochMs: number): { lease?: RememberedLease; reason: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { reason: code === 'ENOENT' ? 'no lease remembered yet' : `cannot read it (${code ?? String(error)})` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { reason: 'not a lease file (not JSON)' };
  }
  if (typeof parsed !== 'object' || parsed === null) return { reason: 'not a lease file (not a JSON object)' };
  const data = parsed as Partial<LeaseFileV1>;
  const address = typeof data.address === 'string' ? tryParseIpv4(data.address) : undefined;
  if (data.version !== 1 || address === undefined) return { reason: 'not a lease file this version reads' };
  if (data.mac !== formatMac(mac)) return { reason: `it is for ${String(data.mac)}, not ${formatMac(mac)}` };
  const expiresAtEpochMs = data.expiresAtEpochMs;
  if (expiresAtEpochMs !== undefined && (typeof expiresAtEpochMs !== 'number' || expiresAtEpochMs <= nowEpochMs)) {
    return { reason: `the lease of ${data.address} has run out` };
  }
  return { lease: { address, ...(expiresAtEpochMs !== undefined ? { expiresAtEpochMs } : {}) }, reason: `asking for ${data.address} again` };
}

/** Write the lease for `mac` to `path` (via a temporary file, so a crash never leaves half a file). */
export function writeLeaseFile(path: string, mac: MacAddress, lease: DhcpLease): void {
  const remembered = rememberLease(lease);
  const data: LeaseFileV1 = {
    version: 1,
    mac: formatMac(mac),
    address: formatIpv4(lease.address),
    prefixLength: lease.prefixLength,
    server: formatIpv4(lease.serverIdentifier),
    ...(remembered.expiresAtEpochMs !== undefined ? { expiresAtEpochMs: remembered.expiresAtEpochMs } : {}),
  };
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(data, null, 2)}\n`);
  renameSync(temporary, path);
}
