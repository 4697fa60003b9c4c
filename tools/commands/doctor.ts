import { RealClock } from '../../src/time/real-clock.js';
import { explainOpenError } from '../boards.js';
import { diagnose, formatDoctorReport, type DoctorChip, type DoctorReport } from '../doctor.js';
import { UsageError } from '../options.js';
import { DEFAULT_MAC, type Values } from '../node.js';
import { CryptoRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';

/**
 * `spinet doctor --port PATH [--chip enc28j60|w5500|auto]`: open the board, then check the chip's
 * wiring step by step (tools/doctor.ts). Exit status 0 when every check passes, 1 at the first failure.
 */
export async function doctor(values: Values): Promise<number> {
  const port = values.port as string | undefined;
  if (!port) throw new UsageError('which serial port? spinet doctor --port PATH');
  const baudRate = values.baud ? Number(values.baud) : 1_000_000;
  if (!Number.isInteger(baudRate) || baudRate <= 0) throw new UsageError(`--baud ${String(values.baud)}: not a baud rate`);
  const chip = (values.chip as string | undefined) ?? 'auto';
  if (!['enc28j60', 'w5500', 'auto'].includes(chip)) throw new UsageError(`--chip ${chip}: enc28j60, w5500 or auto`);
  const json = values.json === true;
  const print = (report: DoctorReport) => console.log(json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
  const { openBridgeHal } = await import('../../hal/bridge/bridge-hal.js');
  const clock = new RealClock();
  let hal;
  try {
    // A notice (an FTDI latency timer set to 1 ms, or how to set it) goes to stderr, out of the report's way.
    hal = await openBridgeHal({ path: port, baudRate, clock, idleFill: 'auto', onNotice: (message) => console.error(message) });
  } catch (error) {
    const explained = explainOpenError(error, port, baudRate) as Error & { code?: string };
    // No answer: no sketch (or the wrong speed). A missing port or a permission: the message says what to do.
    const fix = explained.code === 'ETIMEDOUT' ? `flash the bridge sketch (spinet flash --port ${port}), or pass the --baud it was built for` : explained.message.replace(/^[^:]*: /, '');
    print({ ok: false, checks: [{ name: 'board', ok: false, detail: explained.message, fix }] });
    return 1;
  }
  try {
    const hello = hal.hello;
    const mac = parseMac((values.mac as string | undefined) ?? DEFAULT_MAC);
    const network = values['no-network'] === true ? undefined : { clock, random: new CryptoRandom(), mac };
    const report = await diagnose(hal, { chip: chip as DoctorChip, mac, noResetLine: values['no-reset'] === true, ...(hello ? { board: { name: hello.name, version: hello.version } } : {}), ...(network ? { network } : {}) });
    print(report);
    return report.ok ? 0 : 1;
  } finally {
    await hal.close();
  }
}
