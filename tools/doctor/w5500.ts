import type { Hal } from '../../src/drivers/hal.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import { FrameBatch } from '../../src/drivers/w5500/batch.js';
import * as R from '../../src/drivers/w5500/registers.js';
import type { MacAddress } from '../../src/wire/address.js';
import { CheckFailure, hex, type ChipProbes } from './probes.js';

/**
 * `spinet doctor`'s probes for the W5500: plain SPI frames (DS-W §2.2), each check in one or two
 * batches (FrameBatch only builds the frames; the driver's logic is not involved).
 *
 * The buffer memory belongs to a socket and holds anything only while that socket is open (DS-W
 * §3.3; the strict emulator reports any other access), so the memory and interrupt checks open
 * socket 0 in MACRAW and close it again. The chip raises an interrupt only for network events —
 * here SEND_OK, once a frame is on the wire — so on the W5500 the interrupt check comes after the
 * link check.
 */

const SOCKET = 0;
/** Polls of Sn_CR/Sn_SR after a command, 1 ms apart (the driver allows 100 ms too). */
const COMMAND_POLLS = 100;
/** Polls of MR after a soft reset, 1 ms apart (the driver's 20). */
const RESET_POLLS = 20;
/** How long auto-negotiation may take after RSTn or a cable plugged in before "no link". */
const LINK_WAIT_MS = 5_000;
const LINK_POLL_MS = 50;
/** Local experimental EtherType 1 (IEEE Std 802): reserved for experiments, no host acts on it. */
const EXPERIMENTAL_ETHERTYPE = 0x88b5;
const MIN_FRAME = 60;

export interface W5500ProbeOptions {
  /** Source address of the one frame the interrupt check sends. */
  readonly mac: MacAddress;
}

export function w5500Probes(hal: Hal, options: W5500ProbeOptions): ChipProbes {
  const run = (batch: FrameBatch) => hal.spi.transfer(batch.finish());

  /** Issue a socket 0 command, then wait (bounded) until Sn_CR reads 0 and Sn_SR is `state`. */
  async function command(cr: number, state: number, what: string): Promise<void> {
    const issue = new FrameBatch();
    issue.command(SOCKET, cr);
    await run(issue);
    let seen = [cr, 0, -1];
    for (let poll = 0; poll < COMMAND_POLLS; poll++) {
      await hal.delay(1);
      const batch = new FrameBatch();
      batch.readSocket(SOCKET, R.Sn_CR, 3); // Sn_CR, Sn_IR, Sn_SR
      seen = [...(await run(batch))];
      if (seen[0] === 0 && seen[2] === state) return;
    }
    throw new CheckFailure(
      `socket 0 did not ${what} within ${COMMAND_POLLS} ms (Sn_CR 0x${hex(seen[0]!)}, Sn_SR 0x${hex(seen[2]!)})`,
      'the chip takes commands but does not carry them out: check its power and its 25 MHz crystal, then SCK and MOSI',
    );
  }

  /** Socket 0 in MACRAW with the MAC filter, so that only broadcasts land in its RX buffer. */
  async function openSocket(): Promise<number> {
    const mode = new FrameBatch();
    mode.writeSocket(SOCKET, R.Sn_MR, [R.Sn_MR_MACRAW | R.Sn_MR_MFEN]);
    await run(mode);
    await command(R.Sn_CR_OPEN, R.SOCK_MACRAW, 'open in MACRAW mode');
    const pointer = new FrameBatch();
    pointer.readSocket(SOCKET, R.Sn_TX_WR, 2);
    const r = await run(pointer);
    return (r[0]! << 8) | r[1]!;
  }

  const closeSocket = () => command(R.Sn_CR_CLOSE, R.SOCK_CLOSED, 'close');

  return {
    chip: 'W5500',
    order: ['memory', 'reset', 'link', 'interrupt'],

    // MR.RST (DS-W §4.1 MR), then VERSIONR in a full-duplex frame — MISO carries 0x01 0x02 0x03
    // while the header is clocked (docs/w5500.md) — and RTR, whose reset value is 0x07D0.
    async identify() {
      const reset = new FrameBatch();
      reset.writeCommon(R.MR, [R.MR_RST]);
      await run(reset);
      for (let poll = 0; poll < RESET_POLLS; poll++) {
        await hal.delay(1);
        const mr = new FrameBatch();
        mr.readCommon(R.MR, 1);
        if (!((await run(mr))[0]! & R.MR_RST)) break;
      }
      const rtrRead = new FrameBatch();
      rtrRead.readCommon(R.RTR, 2);
      const r = await hal.spi.transfer([
        { write: Uint8Array.of(R.VERSIONR >> 8, R.VERSIONR & 0xff, R.BSB_COMMON | R.OM_VDM), read: 1, duplex: true },
        ...rtrRead.finish(),
      ]);
      const bytes = [...r];
      const echo = bytes.slice(0, 3);
      const [version, rtr] = [bytes[3]!, (bytes[4]! << 8) | bytes[5]!];
      const recognised = R.HEADER_ECHO.every((b, i) => echo[i] === b) && version === R.W5500_VERSION && rtr === R.RTR_RESET;
      return {
        bytes,
        text: `header ${echo.map((b) => hex(b)).join(' ')}, VERSIONR 0x${hex(version)}, RTR 0x${hex(rtr, 4)}`,
        ...(recognised ? { recognised: 'W5500' } : {}),
      };
    },

    // Socket 0's TX buffer (2 KB after reset), from Sn_TX_WR on: within its free space, never sent.
    async openMemory() {
      const base = await openSocket();
      return {
        async roundTrip(pattern) {
          const batch = new FrameBatch();
          batch.writeTx(SOCKET, base, pattern);
          batch.read(R.bsbSocketTx(SOCKET), base, pattern.length);
          return run(batch);
        },
        close: closeSocket,
      };
    },

    // One broadcast frame of a local experimental EtherType; SEND_OK is the only socket interrupt
    // enabled (Sn_IMR), socket 0's interrupt reaches INTn (SIMR) (DS-W §4.1 SIMR, §4.2 Sn_IMR).
    async raiseInterrupt() {
      const base = await openSocket();
      const frame = new Uint8Array(MIN_FRAME);
      frame.fill(0xff, 0, 6);
      frame.set(options.mac, 6);
      frame[12] = EXPERIMENTAL_ETHERTYPE >> 8;
      frame[13] = EXPERIMENTAL_ETHERTYPE & 0xff;
      const send = new FrameBatch();
      send.writeSocket(SOCKET, R.Sn_IMR, [R.Sn_IR_SEND_OK]);
      send.writeSocket(SOCKET, R.Sn_IR, [0xff]);
      send.writeCommon(R.SIMR, [1 << SOCKET]);
      send.writeTx(SOCKET, base, frame);
      send.writeSocket16(SOCKET, R.Sn_TX_WR, (base + frame.length) & 0xffff);
      send.command(SOCKET, R.Sn_CR_SEND);
      await run(send);
      await hal.delay(5);
      const status = new FrameBatch();
      status.readSocket(SOCKET, R.Sn_CR, 3);
      status.readCommon(R.PHYCFGR, 1);
      const [cr, ir, , phy] = await run(status);
      const clear = new FrameBatch();
      clear.writeSocket(SOCKET, R.Sn_IR, [R.Sn_IR_SEND_OK]);
      clear.writeCommon(R.SIMR, [0]);
      await run(clear);
      await hal.delay(1);
      if (cr === 0) await closeSocket();
      if (ir! & R.Sn_IR_SEND_OK) return { raised: true, what: 'SEND_OK' };
      return {
        raised: false,
        detail: `the chip did not finish sending a frame (S0_CR 0x${hex(cr!)}, S0_IR 0x${hex(ir!)}, PHYCFGR 0x${hex(phy!)})`,
        fix: 'the chip is not working reliably: check its power and its 25 MHz crystal',
      };
    },

    // RTR resets to 0x07D0 (DS-W §4.1 RTR). RSTn low at least 500 µs; the chip answers once its PLL
    // has locked, at most 1 ms after RSTn rises (DS-W §5.5.1).
    resetProbe: {
      register: 'RTR',
      resetValue: R.RTR_RESET,
      pulseMs: 1,
      readyMs: 2,
      async spoil() {
        const batch = new FrameBatch();
        batch.writeCommon(R.RTR, [0x12, 0x34]);
        await run(batch);
      },
      async read() {
        const batch = new FrameBatch();
        batch.readCommon(R.RTR, 2);
        const r = await run(batch);
        return (r[0]! << 8) | r[1]!;
      },
    },

    // PHYCFGR.LNK (DS-W §4.1 PHYCFGR); after RSTn the PHY negotiates again, which takes a while.
    async link() {
      let phy: number;
      for (let waited = 0; ; waited += LINK_POLL_MS) {
        const batch = new FrameBatch();
        batch.readCommon(R.PHYCFGR, 1);
        phy = (await run(batch))[0]!;
        if (phy & R.PHYCFGR_LNK || waited >= LINK_WAIT_MS) break;
        await hal.delay(LINK_POLL_MS);
      }
      if (!(phy & R.PHYCFGR_LNK)) return { up: false, detail: `the PHY sees no link (PHYCFGR 0x${hex(phy)}: LNK clear after ${LINK_WAIT_MS / 1000} s)` };
      const speed = phy & R.PHYCFGR_SPD ? '100' : '10';
      return { up: true, detail: `the PHY sees a link (${speed} Mbit/s, ${phy & R.PHYCFGR_DPX ? 'full' : 'half'} duplex)` };
    },

    nic: (config) => new W5500Nic(config),
  };
}
