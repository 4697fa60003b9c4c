import type { Clock, TimerHandle } from '../../src/time/clock.js';
import type { LanPort, VirtualLan } from '../lan/switch.js';
import { randomBelow, SeededRandom, type Random } from '../../src/time/random.js';
import { crc32 } from '../../src/wire/crc32.js';
import { ETHERNET_MS_PER_BYTE, FCS_BYTES, frameWireTimeMs, INTERFRAME_GAP_BYTES, PREAMBLE_SFD_BYTES } from '../../src/wire/wire-time.js';
import { EMU_PHY, EMU_REGISTERS, isMacMiiRegister, type EmuRegisterName } from './registers.js';

/**
 * A register-accurate ENC28J60 (rev. B7) as an SPI slave, byte by byte.
 *
 * Faithful to the datasheet (DS39662E, "DS-ENC") and the B7 silicon errata (DS80349C items by
 * number) where a driver could notice; docs/enc28j60.md lists the facts with their sources, the
 * choices made where sources disagree, and which errata are modelled. `strict` turns misuse that
 * real silicon punishes (often silently) into reported violations, so a driver that passes here
 * in strict mode works on the chip.
 *
 * Time: the emulator schedules on the injected Clock (MII busy, transmit wire time, oscillator
 * start-up). A whole SPI batch executes at one instant of that clock.
 */

export interface Enc28j60EmulatorOptions {
  clock: Clock;
  /** Burned-in address the emulator reports for inspection only: like silicon, MAADR resets to 0. */
  mac?: Uint8Array;
  /** Report driver misuse that the silicon punishes (see class comment). */
  strict?: boolean;
  onStrictViolation?: (message: string) => void;
  /** EREVID value: 0x06 is rev. B7. */
  revision?: number;
  label?: string;
  /**
   * Frames from the LAN arrive at 10 Mbit/s (`plugInto`): the chip has one only once its last bit
   * is in, and frames queue on the wire. The simulated board turns it on (its figures are about
   * timing); the driver's unit tests keep frames arriving at once, so a flood is a flood.
   */
  rxWireTime?: boolean;
  /**
   * The far end of the cable. The ENC28J60 cannot auto-negotiate, so an auto-negotiating switch
   * port falls back to half duplex by parallel detection (DS-ENC §9.0); only a port forced to full
   * duplex runs full. Default: an auto-negotiating port (half duplex), as on a typical LAN.
   */
  linkPartner?: LinkPartner;
  /** Randomness for collision backoff and the errata modelled by chance (seeded in tests). */
  random?: Random;
  /**
   * Errata #6: the fraction of stored packets whose PKTIF (and so INT) is not raised although
   * EPKTCNT counts them. 0 by default; the driver's tests turn it up.
   */
  pktifMissRate?: number;
  /** Errata #18: the fraction of frames failing the pattern-match filter that it lets through anyway. */
  patternMatchLeakRate?: number;
}

export type LinkPartner = 'auto-negotiating' | 'full-duplex' | 'half-duplex';

/** A transmission the MAC holds (TXRTS set) until it is on the wire and done. */
interface PendingTransmit {
  end: number;
  wire: Uint8Array;
  bytesWithFcs: number;
  fcsOk: boolean;
  fault: TxFault | undefined;
  giant: boolean;
  collisions: number;
  deferred: boolean;
  /** Bytes put on the wire so far, collided attempts included (TSV bits 47:32). */
  wireBytes: number;
}

/** A frame on the receive wire (rxWireTime): the chip has it once its last bit is in. */
interface RxOnWire {
  start: number;
  end: number;
  frame: Uint8Array;
  cable: number;
  /** Garbled by a collision: it never reaches the receive filter. */
  lost: boolean;
  timer: TimerHandle;
}

/** Counters for tests: what the chip did with frames, independent of any driver. */
export interface Enc28j60EmulatorStats {
  rxFramesStored: number;
  rxFilteredOut: number;
  rxDroppedRxDisabled: number;
  rxDroppedOverflow: number;
  rxDroppedTooLong: number;
  rxDroppedLinkDown: number;
  txFramesSent: number;
  txAborted: number;
  txFramesLost: number;
  /** Collisions on the wire (both sides' frames garbled), any duplex. */
  collisions: number;
  /** Transmitted frames the PHY looped back into the receiver (half duplex without HDLDIS, errata #9). */
  rxLoopedBack: number;
  /** PAUSE frames that held the transmitter. */
  pauseFramesHonoured: number;
  spiCommands: number;
}

/**
 * Faults a test can queue for the next transmissions: a late collision (what errata #13's false
 * collisions look like), too many collisions, or a transmitter that stalls (errata #12).
 */
export type TxFault = 'late-collision' | 'excessive-collisions' | 'stall';

// ---- Bits (DS-ENC §3) ---------------------------------------------------------------------
const EIE_INTIE = 0x80;
const EIR_PKTIF = 0x40, EIR_DMAIF = 0x20, EIR_LINKIF = 0x10, EIR_TXIF = 0x08, EIR_TXERIF = 0x02, EIR_RXERIF = 0x01;
const EIR_HOST_WRITABLE = EIR_DMAIF | EIR_TXIF | EIR_TXERIF | EIR_RXERIF;
const ESTAT_INT = 0x80, ESTAT_BUFER = 0x40, ESTAT_LATECOL = 0x10, ESTAT_TXABRT = 0x02, ESTAT_CLKRDY = 0x01;
const ESTAT_HOST_CLEARABLE = ESTAT_BUFER | ESTAT_LATECOL | ESTAT_TXABRT;
const ECON2_AUTOINC = 0x80, ECON2_PKTDEC = 0x40, ECON2_PWRSV = 0x20;
const ECON1_TXRST = 0x80, ECON1_RXRST = 0x40, ECON1_DMAST = 0x20, ECON1_CSUMEN = 0x10, ECON1_TXRTS = 0x08, ECON1_RXEN = 0x04;
const ERXFCON_UCEN = 0x80, ERXFCON_ANDOR = 0x40, ERXFCON_CRCEN = 0x20, ERXFCON_PMEN = 0x10;
const ERXFCON_MPEN = 0x08, ERXFCON_HTEN = 0x04, ERXFCON_MCEN = 0x02, ERXFCON_BCEN = 0x01;
const MACON1_MARXEN = 0x01, MACON1_PASSALL = 0x02, MACON1_RXPAUS = 0x04;
const PHCON2_HDLDIS = 0x0100;
const ESTAT_RXBUSY = 0x04;
/** The slot time, 512 bit times: a collision later than this is a late one (IEEE 802.3 §4.2.3.2.3). */
const SLOT_MS = 64 * 0.0008;
/** Two starts closer than this collide (propagation on a short cable). */
const COLLISION_WINDOW_MS = 0.0008;
/** The jam after a collision: 32 bits. */
const JAM_BYTES = 4;
/** A PAUSE quantum: 512 bit times (IEEE 802.3 Annex 31B). */
const PAUSE_QUANTUM_MS = 64 * 0.0008;
/** RSV bit 16's long event: a packet over 50,000 bit times (DS-ENC Table 7-3). */
const LONG_EVENT_BITS = 50_000;
const MACON3_TXCRCEN = 0x10, MACON3_HFRMEN = 0x04, MACON3_FULDPX = 0x01;
const MICMD_MIISCAN = 0x02, MICMD_MIIRD = 0x01;
const MISTAT_NVALID = 0x04, MISTAT_SCAN = 0x02, MISTAT_BUSY = 0x01;
const PHCON1_PRST = 0x8000, PHCON1_PDPXMD = 0x0100;
const PHSTAT1_LLSTAT = 0x0004;
const PHSTAT2_LSTAT = 0x0400, PHSTAT2_DPXSTAT = 0x0200;
const PHIE_PLNKIE = 0x0010, PHIE_PGEIE = 0x0002;
const PHIR_PLNKIF = 0x0010, PHIR_PGIF = 0x0004;
const CTRL_PHUGEEN = 0x08, CTRL_PPADEN = 0x04, CTRL_PCRCEN = 0x02, CTRL_POVERRIDE = 0x01;

const BUFFER_SIZE = 0x2000;
/** MII operations keep MISTAT.BUSY set for 10.24 µs (DS-ENC §3.3.1). */
const MII_BUSY_MS = 0.01024;
/** Oscillator start-up timer after power-on or RESET: 7500 OSC1 cycles = 300 µs (DS-ENC §2.2). */
const OST_MS = 0.3;
/** After SRC, CLKRDY reads 1 too early; the chip needs ≥1 ms (errata #2). */
const SRC_SETTLE_MS = 1;

type SpiState =
  | { kind: 'idle' }
  | { kind: 'opcode' }
  | { kind: 'rcr'; bank: number; address: number; dummyPending: boolean; dataBytes: number }
  | { kind: 'wcr'; bank: number; address: number; done: boolean }
  | { kind: 'bfs' | 'bfc'; bank: number; address: number; done: boolean }
  | { kind: 'rbm' }
  | { kind: 'wbm'; reported: boolean }
  | { kind: 'src' }
  | { kind: 'ignore' };

export class Enc28j60Emulator {
  readonly strictViolations: string[] = [];
  readonly stats: Enc28j60EmulatorStats = {
    rxFramesStored: 0, rxFilteredOut: 0, rxDroppedRxDisabled: 0, rxDroppedOverflow: 0, rxDroppedTooLong: 0,
    rxDroppedLinkDown: 0, txFramesSent: 0, txAborted: 0, txFramesLost: 0, collisions: 0, rxLoopedBack: 0,
    pauseFramesHonoured: 0, spiCommands: 0,
  };
  /** Every frame the chip put on the wire (padded, without FCS), for tests. */
  readonly transmitted: Uint8Array[] = [];
  /** Keep `transmitted` (off by default for long runs). */
  recordTransmitted = false;

  private readonly clock: Clock;
  private readonly strict: boolean;
  private readonly onStrictViolation?: (message: string) => void;
  private readonly revision: number;
  readonly label: string;
  readonly burnedInMac: Uint8Array | undefined;

  private readonly buffer = new Uint8Array(BUFFER_SIZE);
  private readonly banked = new Uint8Array(4 * 32);
  private eie = 0;
  private eirLatched = 0; // host-writable EIR bits; PKTIF and LINKIF are derived
  private estatLatched = 0; // BUFER, LATECOL, TXABRT
  private econ2 = ECON2_AUTOINC;
  private econ1 = 0;
  private readonly phy = new Uint16Array(32);
  private phstat1LinkLatch = false;

  /** Internal RX write pointer (ERXWRPT reads it). */
  private rxWritePointer = 0;
  /** ERXRDPTL is buffered until ERXRDPTH is written (DS-ENC §7.2.4). */
  private erxrdptLowPending: number | undefined;
  private packetCount = 0;

  private spi: SpiState = { kind: 'idle' };
  private readyAt = 0;
  private readyAfterSrc = false;
  private miiBusyUntil = 0;
  private miiTimer: TimerHandle | undefined;
  private txTimer: TimerHandle | undefined;
  private txNeedsReset = false; // errata #12: after an abort, TXRTS without TXRST stalls
  private txStalled = false;
  private readonly txFaults: TxFault[] = [];
  private txPending: PendingTransmit | undefined;
  /** When the last transmission left the wire (the inter-packet gap counts from here). */
  private txIdleAt = -Infinity;
  private txWireEnd = -Infinity;
  private txWireStart = -Infinity;
  /** A PAUSE frame holds the transmitter until then. */
  private pausedUntil = 0;
  private duplexMismatchReported = false;
  private readonly linkPartner: LinkPartner;
  private readonly random: Random;
  private readonly pktifMissRate: number;
  private readonly patternMatchLeakRate: number;
  /** Errata #6: packets stored while PKTIF failed to rise; PKTIF shows again once a later one sets it. */
  private pktifMissed = false;
  /** RSV bit 16: a packet was dropped since the last one stored. */
  private dropEventSinceLast = false;
  /** RESET pin held low / power off: the chip does nothing and SO floats. */
  private heldInReset = false;
  private poweredOff = false;
  private readonly rxOnWire: RxOnWire[] = [];
  private dmaTimer: TimerHandle | undefined;

  private cableUp = true;
  private port: LanPort | undefined;
  /** Cables plugged (and unplugged) so far: a frame on the wire belongs to one. */
  private cables = 0;
  /** When the receive wire is free for the next frame (10 Mbit/s from the switch port). */
  private rxWireFreeAt = 0;
  private readonly rxWireTime: boolean;
  private interruptLevel = false;
  private readonly interruptListeners = new Set<(asserted: boolean) => void>();

  constructor(options: Enc28j60EmulatorOptions) {
    this.clock = options.clock;
    this.strict = options.strict ?? false;
    this.onStrictViolation = options.onStrictViolation;
    this.revision = options.revision ?? 0x06;
    this.burnedInMac = options.mac;
    this.label = options.label ?? 'enc28j60';
    this.rxWireTime = options.rxWireTime ?? false;
    this.linkPartner = options.linkPartner ?? 'auto-negotiating';
    this.random = options.random ?? new SeededRandom(0x2860);
    this.pktifMissRate = options.pktifMissRate ?? 0;
    this.patternMatchLeakRate = options.patternMatchLeakRate ?? 0;
    this.resetRegisters();
    this.resetPhy();
    // The chip has been powered long before the host talks to it: oscillator already stable.
    this.readyAt = this.clock.now();
  }

  // ---- SPI slave ----------------------------------------------------------------------------

  spiSelect(): void {
    if (this.heldInReset || this.poweredOff) return;
    if (this.spi.kind !== 'idle') this.finishCommand();
    this.spi = { kind: 'opcode' };
  }

  spiExchange(mosi: number): number {
    if (this.heldInReset || this.poweredOff) return 0xff; // in reset or unpowered, SO floats
    const s = this.spi;
    switch (s.kind) {
      case 'idle':
        return 0xff; // CS high: SO is high impedance
      case 'opcode':
        return this.decodeOpcode(mosi & 0xff);
      case 'rcr': {
        s.dataBytes++;
        if (s.dummyPending) {
          s.dummyPending = false;
          return 0x00; // the MAC/MII dummy byte is undefined on silicon
        }
        if (s.dataBytes > (isMacMiiRegister(s.bank, s.address) ? 2 : 1)) {
          this.violation(`RCR ${this.regName(s.bank, s.address)} clocked past its data byte (one register per RCR)`);
        }
        return this.readRegister(s.bank, s.address);
      }
      case 'wcr':
        if (s.done) {
          this.violation(`WCR ${this.regName(s.bank, s.address)} sent extra bytes (one register per WCR)`);
          return 0x00;
        }
        s.done = true;
        this.writeRegister(s.bank, s.address, mosi & 0xff);
        return 0x00;
      case 'bfs':
      case 'bfc': {
        if (s.done) return 0x00;
        s.done = true;
        const mac = isMacMiiRegister(s.bank, s.address);
        if (mac) {
          // DS-ENC §4.2.5 forbids it, yet silicon applies it (drivers that set MACON3 bits with
          // BFS work on real chips), so the emulator does too; strict reports it.
          this.violation(`${s.kind.toUpperCase()} on MAC/MII register ${this.regName(s.bank, s.address)} (DS-ENC §4.2.5: use WCR)`);
        }
        const old = this.readRegisterRaw(s.bank, s.address);
        const value = s.kind === 'bfs' ? old | mosi : old & ~mosi;
        this.writeRegister(s.bank, s.address, value & 0xff);
        return 0x00;
      }
      case 'rbm':
        return this.readBufferByte();
      case 'wbm':
        this.writeBufferByte(mosi & 0xff, s);
        return 0x00;
      case 'src':
        this.violation('SRC followed by more bytes: raise CS right after the opcode');
        return 0x00;
      case 'ignore':
        return 0x00;
    }
  }

  spiDeselect(): void {
    if (this.heldInReset || this.poweredOff) return;
    this.finishCommand();
    this.spi = { kind: 'idle' };
  }

  /** CS released by a board reset mid-command: SRC still executes, nothing is reported. */
  spiAbort(): void {
    if (this.heldInReset || this.poweredOff) return;
    if (this.spi.kind === 'src') this.softReset();
    this.spi = { kind: 'idle' };
  }

  private decodeOpcode(byte: number): number {
    this.stats.spiCommands++;
    const opcode = byte >> 5;
    const argument = byte & 0x1f;
    if (!this.isReady()) {
      const isEstatRead = opcode === 0 && argument === 0x1d;
      if (!(isEstatRead && !this.readyAfterSrc)) {
        const early = ((this.readyAt - this.clock.now()) * 1000).toFixed(0);
        this.violation(
          this.readyAfterSrc
            ? `SPI command 0x${byte.toString(16)} ${early} µs too early after SRC (errata #2: wait ≥1 ms, CLKRDY is set early)`
            : `SPI command 0x${byte.toString(16)} before CLKRDY after reset (${early} µs early)`,
        );
        this.spi = { kind: 'ignore' };
        return 0x00;
      }
    }
    const bank = argument >= 0x1b ? -1 : this.econ1 & 0x03;
    switch (opcode) {
      case 0:
        this.spi = { kind: 'rcr', bank, address: argument, dummyPending: isMacMiiRegister(bank, argument), dataBytes: 0 };
        break;
      case 1:
        if (argument !== 0x1a) return this.invalidOpcode(byte);
        this.spi = { kind: 'rbm' };
        break;
      case 2:
        this.spi = { kind: 'wcr', bank, address: argument, done: false };
        break;
      case 3:
        if (argument !== 0x1a) return this.invalidOpcode(byte);
        this.spi = { kind: 'wbm', reported: false };
        break;
      case 4:
        this.spi = { kind: 'bfs', bank, address: argument, done: false };
        break;
      case 5:
        this.spi = { kind: 'bfc', bank, address: argument, done: false };
        break;
      case 7:
        if (argument !== 0x1f) return this.invalidOpcode(byte);
        this.spi = { kind: 'src' };
        break;
      default:
        return this.invalidOpcode(byte);
    }
    return 0x00;
  }

  private invalidOpcode(byte: number): number {
    this.violation(`invalid SPI opcode 0x${byte.toString(16).padStart(2, '0')}`);
    this.spi = { kind: 'ignore' };
    return 0x00;
  }

  private finishCommand(): void {
    const s = this.spi;
    if (s.kind === 'rcr' && isMacMiiRegister(s.bank, s.address) && s.dataBytes < 2) {
      this.violation(`RCR ${this.regName(s.bank, s.address)} read without the MAC/MII dummy byte (DS-ENC Figure 4-4)`);
    }
    if (s.kind === 'src') this.softReset();
  }

  // ---- Reset ----------------------------------------------------------------------------------

  /** RESET pin pulsed (or power cycled): everything back to reset values, oscillator restarts. */
  hardReset(): void {
    this.cancelTimers();
    this.resetRegisters();
    this.resetPhy();
    this.spi = { kind: 'idle' };
    this.readyAt = this.clock.now() + OST_MS;
    this.readyAfterSrc = false;
    this.updateInterrupt();
  }

  /**
   * The RESET pin held low (`true`) or released. While low the chip is held in reset: it ignores
   * SPI (SO floats), receives and sends nothing and releases INT; on release it starts like after
   * power-up (the oscillator start-up timer, DS-ENC §2.2, §11.1).
   */
  setResetPin(low: boolean): void {
    if (low === this.heldInReset) return;
    this.heldInReset = low;
    if (low) this.enterReset();
    else this.hardReset();
  }

  /**
   * Power off (`false`) or on. Power loss resets everything, the PHY with it, and the buffer memory
   * is not kept: it comes back as noise.
   */
  setPower(on: boolean): void {
    if (on === !this.poweredOff) return;
    this.poweredOff = !on;
    if (!on) {
      this.enterReset();
      return;
    }
    for (let i = 0; i < BUFFER_SIZE; i++) this.buffer[i] = randomBelow(this.random, 256);
    this.hardReset();
  }

  private enterReset(): void {
    this.cancelTimers();
    this.resetRegisters();
    this.resetPhy();
    this.spi = { kind: 'idle' };
    this.updateInterrupt();
  }

  private softReset(): void {
    if (this.econ2 & ECON2_PWRSV) {
      this.violation('SRC while ECON2.PWRSV is set is ignored by the chip (errata #19)');
      return;
    }
    // SRC resets the controller and MAC, not the PHY registers (DS-ENC §11.2).
    this.cancelTimers();
    this.resetRegisters();
    this.readyAt = this.clock.now() + SRC_SETTLE_MS;
    this.readyAfterSrc = true;
    this.updateInterrupt();
  }

  private cancelTimers(): void {
    this.miiTimer?.cancel();
    this.txTimer?.cancel();
    this.dmaTimer?.cancel();
    this.miiTimer = this.txTimer = this.dmaTimer = undefined;
    this.miiBusyUntil = 0;
    this.txPending = undefined;
  }

  private resetRegisters(): void {
    this.banked.fill(0);
    const set = (name: EmuRegisterName, value: number) => {
      const [bank, address] = EMU_REGISTERS[name];
      this.banked[bank * 32 + address] = value;
    };
    // DS-ENC Table 3-2 reset values.
    set('ERDPTL', 0xfa); set('ERDPTH', 0x05);
    set('ERXSTL', 0xfa); set('ERXSTH', 0x05);
    set('ERXNDL', 0xff); set('ERXNDH', 0x1f);
    set('ERXRDPTL', 0xfa); set('ERXRDPTH', 0x05);
    set('ERXFCON', ERXFCON_UCEN | ERXFCON_CRCEN | ERXFCON_BCEN);
    set('MACLCON1', 0x0f); set('MACLCON2', 0x37);
    set('MAMXFLL', 0xee); set('MAMXFLH', 0x05);
    set('ECOCON', 0x04);
    set('EPAUSH', 0x10);
    set('EREVID', this.revision);
    this.eie = 0;
    this.eirLatched = 0;
    this.estatLatched = 0;
    this.econ2 = ECON2_AUTOINC;
    this.econ1 = 0;
    this.rxWritePointer = 0;
    this.erxrdptLowPending = undefined;
    this.packetCount = 0;
    this.txNeedsReset = false;
    this.txStalled = false;
    this.pausedUntil = 0;
    this.pktifMissed = false;
    this.dropEventSinceLast = false;
    this.duplexMismatchReported = false;
  }

  private resetPhy(): void {
    this.phy.fill(0);
    this.phy[EMU_PHY.PHSTAT1] = 0x1800; // PFDPX | PHDPX: both duplex modes supported
    this.phy[EMU_PHY.PHID1] = 0x0083;
    this.phy[EMU_PHY.PHID2] = 0x1400;
    this.phy[EMU_PHY.PHLCON] = 0x3422;
    this.phstat1LinkLatch = this.linkUp;
  }

  private isReady(): boolean {
    return this.clock.now() >= this.readyAt;
  }

  // ---- Registers ------------------------------------------------------------------------------

  private reg(name: EmuRegisterName): number {
    const [bank, address] = EMU_REGISTERS[name];
    return this.banked[bank * 32 + address]!;
  }

  private reg16(low: EmuRegisterName): number {
    const [bank, address] = EMU_REGISTERS[low];
    return (this.banked[bank * 32 + address]! | (this.banked[bank * 32 + address + 1]! << 8)) & 0x1fff;
  }

  private setReg16(low: EmuRegisterName, value: number): void {
    const [bank, address] = EMU_REGISTERS[low];
    this.banked[bank * 32 + address] = value & 0xff;
    this.banked[bank * 32 + address + 1] = (value >> 8) & 0x1f;
  }

  private get eir(): number {
    let eir = this.eirLatched;
    // PKTIF follows EPKTCNT, except after a packet whose PKTIF failed to rise (errata #6).
    if (this.packetCount > 0 && !this.pktifMissed) eir |= EIR_PKTIF;
    const phie = this.phy[EMU_PHY.PHIE]!;
    if (phie & PHIE_PGEIE && this.phy[EMU_PHY.PHIR]! & PHIR_PGIF) eir |= EIR_LINKIF;
    return eir;
  }

  /** Register value as RCR returns it, with side effects of reading (none on this chip but MIRD scan). */
  private readRegister(bank: number, address: number): number {
    if (bank === 2 && (address === 0x18 || address === 0x19)) {
      if (this.clock.now() < this.miiBusyUntil) this.violation('MIRD read while MISTAT.BUSY is set (wait 10.24 µs, DS-ENC §3.3.1)');
      else if (this.reg('MICMD') & MICMD_MIIRD) this.violation('MIRD read with MICMD.MIIRD still set (DS-ENC §3.3.1: clear MIIRD first)');
      if (this.reg('MICMD') & MICMD_MIISCAN) this.latchMird(this.readPhy(this.reg('MIREGADR') & 0x1f));
    }
    return this.readRegisterRaw(bank, address);
  }

  private readRegisterRaw(bank: number, address: number): number {
    switch (address) {
      case 0x1b: return this.eie;
      case 0x1c: return this.eir;
      case 0x1d: {
        let estat = this.estatLatched;
        if (this.interruptLevel) estat |= ESTAT_INT;
        if (this.receiving) estat |= ESTAT_RXBUSY;
        if (this.readyAfterSrc || this.isReady()) estat |= ESTAT_CLKRDY; // errata #2: early after SRC
        return estat;
      }
      case 0x1e: return this.econ2 & ~ECON2_PKTDEC;
      case 0x1f: return this.econ1;
      case 0x1a: return 0;
    }
    if (bank === 0 && address === 0x0e) return this.rxWritePointer & 0xff;
    if (bank === 0 && address === 0x0f) return this.rxWritePointer >> 8;
    if (bank === 1 && address === 0x19) return this.packetCount;
    if (bank === 3 && address === 0x0a) {
      let mistat = this.banked[3 * 32 + 0x0a]! & (MISTAT_NVALID | MISTAT_SCAN);
      if (mistat & MISTAT_NVALID && this.clock.now() >= this.miiBusyUntil) {
        mistat &= ~MISTAT_NVALID; // the first scan has completed
        this.banked[3 * 32 + 0x0a] = mistat;
      }
      if (this.clock.now() < this.miiBusyUntil || mistat & MISTAT_SCAN) mistat |= MISTAT_BUSY; // scanning keeps the MII busy
      return mistat;
    }
    return this.banked[bank * 32 + address]!;
  }

  private writeRegister(bank: number, address: number, value: number): void {
    switch (address) {
      case 0x1a:
        return;
      case 0x1b:
        this.eie = value;
        this.updateInterrupt();
        return;
      case 0x1c: {
        // PKTIF and LINKIF are read-only; the rest are host-clearable (and settable).
        this.eirLatched = (this.eirLatched & ~EIR_HOST_WRITABLE) | (value & EIR_HOST_WRITABLE);
        this.updateInterrupt();
        return;
      }
      case 0x1d:
        // Only BUFER, LATECOL and TXABRT can be cleared by the host.
        this.estatLatched &= value | ~ESTAT_HOST_CLEARABLE;
        return;
      case 0x1e:
        this.writeEcon2(value);
        return;
      case 0x1f:
        this.writeEcon1(value);
        return;
    }
    const index = bank * 32 + address;
    if (bank === 0) {
      if (address === 0x0e || address === 0x0f) return; // ERXWRPT is read-only
      if (address >= 0x08 && address <= 0x0b && this.econ1 & ECON1_RXEN) {
        this.violation(`${this.regName(bank, address)} written while ECON1.RXEN is set (DS-ENC §6.1)`);
      }
      if (address === 0x0c) {
        this.erxrdptLowPending = value;
        return;
      }
      if (address === 0x0d) {
        const low = this.erxrdptLowPending ?? this.banked[index - 1]!;
        this.erxrdptLowPending = undefined;
        this.banked[index - 1] = low;
        this.banked[index] = value & 0x1f;
        const erxrdpt = this.reg16('ERXRDPTL');
        if ((erxrdpt & 1) === 0) this.violation(`ERXRDPT set to even 0x${erxrdpt.toString(16)} (errata #14: keep it odd)`);
        return;
      }
      if ((address & 1) === 1) value &= 0x1f; // 13-bit pointers
      this.banked[index] = value;
      if (address === 0x08 || address === 0x09) {
        // ERXST writes also move the internal write pointer; errata #5 (it may become 0 instead)
        // is applied at RXEN.
        this.rxWritePointer = this.reg16('ERXSTL');
      }
      return;
    }
    if (bank === 1 && address === 0x19) {
      this.violation('EPKTCNT is read-only (use ECON2.PKTDEC)');
      return;
    }
    if (bank === 1 && address === 0x18 && this.econ1 & ECON1_RXEN && value !== this.banked[index]) {
      // A filter change takes effect in the middle of whatever frame is coming in.
      this.violation('ERXFCON changed while ECON1.RXEN is set (DS-ENC §8: disable reception before changing the filters)');
    }
    if (bank === 2) {
      if (address === 0x18 || address === 0x19) return; // MIRD is read-only
      if ((address === 0x16 || address === 0x17 || address === 0x12) && this.clock.now() < this.miiBusyUntil) {
        this.violation(`${this.regName(bank, address)} written while MISTAT.BUSY is set (DS-ENC §3.3)`);
      }
      if ((address === 0x17 || address === 0x14 || (address === 0x12 && value & MICMD_MIIRD)) && this.reg('MICMD') & MICMD_MIISCAN) {
        this.violation(`${this.regName(bank, address)} written while MICMD.MIISCAN is set (DS-ENC §3.3.3: stop the scan first)`);
      }
      this.banked[index] = value;
      if (address === 0x12) this.writeMicmd(value);
      if (address === 0x17) this.startMiiWrite();
      return;
    }
    if (bank === 3 && (address === 0x0a || address === 0x12)) return; // MISTAT, EREVID read-only
    this.banked[index] = value;
  }

  private writeEcon2(value: number): void {
    if (value & ECON2_PKTDEC) {
      if (this.packetCount > 0) this.packetCount--;
      else this.violation('ECON2.PKTDEC with EPKTCNT already 0');
      if (this.packetCount === 0) this.pktifMissed = false;
      this.updateInterrupt();
    }
    this.econ2 = value & ~ECON2_PKTDEC;
  }

  private writeEcon1(value: number): void {
    const old = this.econ1;
    this.econ1 = value;
    const rising = value & ~old;
    const falling = old & ~value;
    if (falling & ECON1_TXRST) {
      // Errata #12: clearing TXRST can set TXERIF; the driver clears the flags after the pulse.
      this.eirLatched |= EIR_TXERIF;
      this.updateInterrupt();
    }
    if (rising & ECON1_TXRST) {
      // Transmit logic held in reset: anything in flight is abandoned, a stall ends (errata #12).
      this.txTimer?.cancel();
      this.txTimer = undefined;
      this.txPending = undefined;
      this.txStalled = false;
      this.txNeedsReset = false;
      this.econ1 &= ~ECON1_TXRTS;
    }
    if (rising & ECON1_RXRST) {
      // Receive logic reset: reception stops, the write pointer and EPKTCNT restart.
      this.econ1 &= ~ECON1_RXEN;
      this.rxWritePointer = this.reg16('ERXSTL');
      this.packetCount = 0;
      this.updateInterrupt();
    }
    if (rising & ECON1_RXEN && !(value & ECON1_RXRST)) {
      const erxst = this.reg16('ERXSTL');
      const erxnd = this.reg16('ERXNDL');
      if (erxst !== 0) {
        // Errata #5: unless the ring starts at 0 the internal write pointer may be 0 instead of
        // ERXST. We always fail that way, so the misuse is visible even without strict mode.
        this.violation(`RXEN with ERXST 0x${erxst.toString(16)} (errata #5: the receive buffer must start at 0x0000)`);
        if (this.rxWritePointer === erxst) this.rxWritePointer = 0;
      }
      if (erxnd === erxst) this.violation(`RXEN with ERXND 0x${erxnd.toString(16)} = ERXST: no ring`);
      const erxrdpt = this.reg16('ERXRDPTL');
      if (!this.inReceiveRing(erxrdpt)) this.violation(`RXEN with ERXRDPT 0x${erxrdpt.toString(16)} outside the ring`);
    }
    if (value & ECON1_RXRST) this.econ1 &= ~ECON1_RXEN;
    if (falling & ECON1_TXRTS && this.txPending) {
      // Host cancelled the transmission (DS-ENC §7.1).
      this.txTimer?.cancel();
      this.txTimer = undefined;
      this.txPending = undefined;
      this.stats.txAborted++;
    }
    if (rising & ECON1_TXRTS) {
      if (value & ECON1_TXRST) this.econ1 &= ~ECON1_TXRTS;
      else this.startTransmit();
    }
    if (rising & ECON1_DMAST) this.startDma();
  }

  // ---- PHY over MII ---------------------------------------------------------------------------

  private writeMicmd(value: number): void {
    const regAddress = this.reg('MIREGADR') & 0x1f;
    if (value & MICMD_MIIRD) {
      this.miiBusyUntil = this.clock.now() + MII_BUSY_MS;
      this.miiTimer?.cancel();
      this.miiTimer = this.clock.schedule(MII_BUSY_MS, () => {
        this.miiTimer = undefined;
        this.latchMird(this.readPhy(regAddress));
      });
    }
    if (value & MICMD_MIISCAN) {
      // Scan: the PHY register is read again and again; MIRD is valid once the first read ends.
      this.banked[3 * 32 + 0x0a] |= MISTAT_SCAN | MISTAT_NVALID;
      this.miiBusyUntil = this.clock.now() + MII_BUSY_MS;
      this.latchMird(this.readPhy(regAddress));
    } else {
      this.banked[3 * 32 + 0x0a] &= ~(MISTAT_SCAN | MISTAT_NVALID);
    }
  }

  private latchMird(value: number): void {
    this.banked[2 * 32 + 0x18] = value & 0xff;
    this.banked[2 * 32 + 0x19] = value >> 8;
  }

  private startMiiWrite(): void {
    const regAddress = this.reg('MIREGADR') & 0x1f;
    const value = this.reg('MIWRL') | (this.reg('MIWRH') << 8);
    this.miiBusyUntil = this.clock.now() + MII_BUSY_MS;
    this.miiTimer?.cancel();
    this.miiTimer = this.clock.schedule(MII_BUSY_MS, () => {
      this.miiTimer = undefined;
      this.writePhy(regAddress, value);
    });
  }

  private readPhy(address: number): number {
    switch (address) {
      case EMU_PHY.PHSTAT1: {
        const value = (this.phy[EMU_PHY.PHSTAT1]! & ~PHSTAT1_LLSTAT) | (this.phstat1LinkLatch ? PHSTAT1_LLSTAT : 0);
        this.phstat1LinkLatch = this.linkUp; // LLSTAT latches low until read
        return value;
      }
      case EMU_PHY.PHSTAT2: {
        let value = 0;
        if (this.linkUp) value |= PHSTAT2_LSTAT;
        if (this.phy[EMU_PHY.PHCON1]! & PHCON1_PDPXMD) value |= PHSTAT2_DPXSTAT;
        return value;
      }
      case EMU_PHY.PHIR: {
        const value = this.phy[EMU_PHY.PHIR]!;
        this.phy[EMU_PHY.PHIR] = 0; // reading PHIR clears PGIF and PLNKIF (DS-ENC §12.1.5)
        this.updateInterrupt();
        return value;
      }
      case EMU_PHY.PHCON1:
      case EMU_PHY.PHID1:
      case EMU_PHY.PHID2:
      case EMU_PHY.PHCON2:
      case EMU_PHY.PHIE:
      case EMU_PHY.PHLCON:
        return this.phy[address]!;
      default:
        // DS-ENC Table 3-3 lists nine PHY registers; what the others read is not documented.
        this.violation(`MII read of unimplemented PHY register 0x${address.toString(16)} (DS-ENC Table 3-3)`);
        return this.phy[address]!;
    }
  }

  private writePhy(address: number, value: number): void {
    switch (address) {
      case EMU_PHY.PHCON1:
        if (value & PHCON1_PRST) {
          this.resetPhy();
          return;
        }
        this.phy[address] = value;
        return;
      case EMU_PHY.PHSTAT1:
      case EMU_PHY.PHSTAT2:
      case EMU_PHY.PHID1:
      case EMU_PHY.PHID2:
      case EMU_PHY.PHIR:
        return; // read-only
      case EMU_PHY.PHIE:
        this.phy[address] = value;
        this.updateInterrupt();
        return;
      default:
        this.phy[address] = value;
    }
  }

  // ---- Buffer memory --------------------------------------------------------------------------

  private readBufferByte(): number {
    const erdpt = this.reg16('ERDPTL');
    const value = this.buffer[erdpt]!;
    if (this.econ2 & ECON2_AUTOINC) {
      // DS-ENC §4.2.2: wraps ERXND → ERXST, and 0x1FFF → 0.
      let next: number;
      if (erdpt === this.reg16('ERXNDL')) next = this.reg16('ERXSTL');
      else next = (erdpt + 1) & 0x1fff;
      this.setReg16('ERDPTL', next);
    }
    return value;
  }

  private writeBufferByte(value: number, command: { reported: boolean }): void {
    const ewrpt = this.reg16('EWRPTL');
    if (this.econ1 & ECON1_TXRTS && !command.reported && this.inTxRange(ewrpt)) {
      command.reported = true;
      this.violation(`WBM into the frame being transmitted (0x${ewrpt.toString(16)}) while TXRTS is set`);
    }
    this.buffer[ewrpt] = value;
    if (this.econ2 & ECON2_AUTOINC) this.setReg16('EWRPTL', (ewrpt + 1) & 0x1fff);
  }

  private inTxRange(address: number): boolean {
    const start = this.reg16('ETXSTL');
    const end = this.reg16('ETXNDL');
    return start <= end ? address >= start && address <= end : address >= start || address <= end;
  }

  // ---- Transmit -------------------------------------------------------------------------------

  private startTransmit(): void {
    if (this.txNeedsReset || this.txFaults[0] === 'stall') {
      // Errata #12: after an abort the transmitter can stall with TXRTS set until TXRST.
      if (this.txFaults[0] === 'stall') this.txFaults.shift();
      this.txStalled = true;
      return;
    }
    const start = this.reg16('ETXSTL');
    const end = this.reg16('ETXNDL');
    if (start & 1) this.violation(`ETXST 0x${start.toString(16)} is odd (DS-ENC §7.1: should be even)`);
    const length = ((end - start + BUFFER_SIZE) & 0x1fff); // frame bytes after the control byte
    const control = this.buffer[start]!;
    const frame = new Uint8Array(length);
    for (let i = 0; i < length; i++) frame[i] = this.buffer[(start + 1 + i) & 0x1fff]!;
    const macon3 = this.reg('MACON3');
    let padTo = 0;
    let appendCrc: boolean;
    let huge: boolean;
    if (control & CTRL_POVERRIDE) {
      padTo = control & CTRL_PPADEN ? 60 : 0;
      // PPADEN without PCRCEN pads and appends nothing: the last 4 bytes are checked as the FCS (p.39).
      appendCrc = (control & CTRL_PCRCEN) !== 0;
      huge = (control & CTRL_PHUGEEN) !== 0;
    } else {
      const padcfg = macon3 >> 5;
      if (padcfg & 1) {
        if (padcfg === 0b001) padTo = 60;
        else if (padcfg === 0b101) padTo = length >= 14 && frame[12] === 0x81 && frame[13] === 0x00 ? 64 : 60;
        else padTo = 64; // 011, 111
      }
      appendCrc = (macon3 & MACON3_TXCRCEN) !== 0 || padTo > 0;
      huge = (macon3 & MACON3_HFRMEN) !== 0;
    }
    if ((macon3 & MACON3_FULDPX ? 1 : 0) !== (this.phy[EMU_PHY.PHCON1]! & PHCON1_PDPXMD ? 1 : 0)) {
      this.violation('MACON3.FULDPX and PHCON1.PDPXMD disagree (DS-ENC §6.6: configure both for the same duplex)');
    }
    let wire = frame;
    if (wire.length < padTo) {
      wire = new Uint8Array(padTo);
      wire.set(frame);
    }
    let fcsOk = true;
    if (!appendCrc) {
      // The host supplied the FCS as the last four bytes.
      if (wire.length < 4) fcsOk = false;
      else {
        const body = wire.subarray(0, wire.length - 4);
        const crc = crc32(body);
        const given = wire[wire.length - 4]! | (wire[wire.length - 3]! << 8) | (wire[wire.length - 2]! << 16) | (wire[wire.length - 1]! << 24);
        fcsOk = crc === given >>> 0;
        wire = body;
      }
    }
    const fault = this.txFaults.shift();
    const bytesWithFcs = wire.length + FCS_BYTES;
    const maxFrame = this.reg16('MAMXFLL') | (this.reg('MAMXFLH') << 8);
    const giant = !huge && bytesWithFcs > maxFrame;
    this.txPending = { end, wire, bytesWithFcs, fcsOk, fault, giant, collisions: 0, deferred: false, wireBytes: 0 };
    this.attemptTransmit();
  }

  /**
   * Start the pending frame when the MAC may: after the inter-packet gap (MABBIPG) behind the last
   * one, not while a PAUSE frame holds the transmitter (full duplex with MACON1.RXPAUS), and in half
   * duplex not while the receive wire carries a frame (deferral, IEEE 802.3 §4.2.3.2.1).
   */
  private attemptTransmit(): void {
    const tx = this.txPending;
    if (!tx) return;
    const now = this.clock.now();
    let at = Math.max(now, this.txIdleAt + this.interPacketGapMs, this.pausedUntil);
    if (!this.macFullDuplex) {
      for (const frame of this.rxOnWire) {
        if (!frame.lost && frame.start <= at && at < frame.end + this.interPacketGapMs) {
          at = frame.end + this.interPacketGapMs;
          tx.deferred = true;
        }
      }
    }
    if (at > now) {
      this.txTimer = this.clock.schedule(at - now, () => {
        this.txTimer = undefined;
        this.attemptTransmit();
      });
      return;
    }
    this.beginTransmit(tx, now);
  }

  private beginTransmit(tx: PendingTransmit, now: number): void {
    const duration = (PREAMBLE_SFD_BYTES + tx.bytesWithFcs) * ETHERNET_MS_PER_BYTE;
    const end = now + duration;
    const linkFull = this.linkFullDuplex;
    const macFull = this.macFullDuplex;
    if (this.linkUp && macFull !== linkFull && !this.duplexMismatchReported) {
      this.duplexMismatchReported = true;
      this.violation(
        `duplex mismatch: the chip runs ${macFull ? 'full' : 'half'} duplex, the link partner ${linkFull ? 'full' : 'half'} ` +
          '(the ENC28J60 cannot auto-negotiate; an auto-negotiating switch port falls back to half duplex, DS-ENC §9.0)',
      );
    }
    let collisionAt: number | undefined;
    let lostOnWire = false;
    if (this.rxWireTime && this.linkUp && !tx.fault) {
      for (let i = 0; i < this.rxOnWire.length; i++) {
        const frame = this.rxOnWire[i]!;
        if (frame.lost || frame.end <= now || frame.start >= end) continue;
        if (frame.start <= now) {
          // A frame already coming in: a half-duplex MAC deferred to it, so only a full-duplex MAC
          // gets here. A half-duplex partner sees a collision: our frame is garbled, and its own
          // goes again after ours when still in its slot time, else is lost (a late collision).
          if (linkFull) continue;
          lostOnWire = true;
          if (now - frame.start < SLOT_MS) this.shiftRxFrom(i, end + this.interPacketGapMs);
          else frame.lost = true;
          this.stats.collisions++;
          break;
        }
        if (!linkFull) {
          // A half-duplex partner senses our carrier and defers (a start at the same instant collides).
          if (frame.start - now < COLLISION_WINDOW_MS && !macFull) collisionAt = frame.start;
          else this.shiftRxFrom(i, end + this.interPacketGapMs);
          if (collisionAt !== undefined) this.shiftRxFrom(i, end + this.interPacketGapMs + SLOT_MS);
          break;
        }
        if (macFull) continue; // both full duplex: the two directions are independent
        // Our half-duplex MAC hears the full-duplex partner transmit over us: a collision; the
        // partner does not back off, so its frame is garbled for us.
        collisionAt = frame.start;
        frame.lost = true;
        break;
      }
    }
    this.txWireStart = now;
    if (collisionAt !== undefined) {
      this.collide(tx, collisionAt);
      return;
    }
    this.txWireEnd = end;
    tx.wireBytes += PREAMBLE_SFD_BYTES + tx.bytesWithFcs;
    this.txTimer = this.clock.schedule(duration, () => {
      this.txTimer = undefined;
      this.finishTransmit(tx, 0, tx.fault === 'late-collision' || tx.fault === 'excessive-collisions' ? tx.fault : undefined, lostOnWire);
    });
  }

  /**
   * A collision `at` (now or later) with the transmission that went on the wire at txWireStart:
   * jam, then back off and try again, unless it came after the slot time (a late collision) or
   * MACLCON1's retransmissions are used up: then the frame is aborted (DS-ENC §6.5, Table 7-1).
   */
  private collide(tx: PendingTransmit, at: number): void {
    this.txTimer?.cancel();
    this.txTimer = undefined;
    tx.collisions++;
    this.stats.collisions++;
    const intoFrame = at - this.txWireStart;
    const jamEnd = at + JAM_BYTES * ETHERNET_MS_PER_BYTE;
    tx.wireBytes += Math.ceil(intoFrame / ETHERNET_MS_PER_BYTE) + JAM_BYTES;
    this.txWireEnd = jamEnd;
    const late = intoFrame >= SLOT_MS;
    const retryMax = this.reg('MACLCON1') & 0x0f;
    const now = this.clock.now();
    if (late || tx.collisions > retryMax) {
      this.finishTransmit(tx, jamEnd - now, late ? 'late-collision' : 'excessive-collisions');
      return;
    }
    // Truncated binary exponential backoff (IEEE 802.3 §4.2.3.2.5).
    const slots = randomBelow(this.random, 2 ** Math.min(tx.collisions, 10));
    this.txTimer = this.clock.schedule(jamEnd - now + slots * SLOT_MS, () => {
      this.txTimer = undefined;
      this.attemptTransmit();
    });
  }

  private finishTransmit(tx: PendingTransmit, extraMs: number, abort: TxFault | undefined, lostOnWire = false): void {
    const finish = () => {
      this.txTimer = undefined;
      this.txPending = undefined;
      this.txIdleAt = this.clock.now();
      const aborted = abort !== undefined || tx.giant;
      this.writeTsv(tx, { aborted, abort });
      this.econ1 &= ~ECON1_TXRTS;
      if (aborted) {
        this.stats.txAborted++;
        this.txNeedsReset = true;
        this.estatLatched |= ESTAT_TXABRT;
        // ESTAT.LATECOL is unreliable on silicon (errata #15): the emulator leaves it clear, so a
        // driver must go by TSV bit 29.
        this.eirLatched |= EIR_TXERIF | EIR_TXIF;
      } else {
        this.eirLatched |= EIR_TXIF;
        this.stats.txFramesSent++;
        if (this.recordTransmitted) this.transmitted.push(tx.wire);
        if (this.port && this.linkUp && tx.fcsOk && tx.wire.length >= 14 && !lostOnWire) this.port.send(tx.wire);
        else this.stats.txFramesLost++;
        // Errata #9: in half duplex the PHY loops transmitted frames back to the receiver unless
        // PHCON2.HDLDIS is set.
        if (!this.macFullDuplex && !(this.phy[EMU_PHY.PHCON2]! & PHCON2_HDLDIS) && this.linkUp && tx.fcsOk) {
          this.stats.rxLoopedBack++;
          this.receiveFrame(Uint8Array.from(tx.wire));
        }
      }
      this.updateInterrupt();
    };
    if (extraMs > 0) this.txTimer = this.clock.schedule(extraMs, finish);
    else finish();
  }

  /** The frames on the receive wire from `index` on start no earlier than `at` (the partner deferred). */
  private shiftRxFrom(index: number, at: number): void {
    let t = at;
    for (let i = index; i < this.rxOnWire.length; i++) {
      const frame = this.rxOnWire[i]!;
      if (frame.start >= t) break;
      const length = frame.end - frame.start;
      frame.start = t;
      frame.end = t + length;
      frame.timer.cancel();
      frame.timer = this.clock.schedule(frame.end - this.clock.now(), () => this.rxFrameEnded(frame));
      t = frame.end + INTERFRAME_GAP_BYTES * ETHERNET_MS_PER_BYTE;
    }
    this.rxWireFreeAt = Math.max(this.rxWireFreeAt, t);
  }

  /** MACON3.FULDPX: the MAC's duplex (the PHY's, PHCON1.PDPXMD, must agree: DS-ENC §6.6). */
  private get macFullDuplex(): boolean {
    return (this.reg('MACON3') & MACON3_FULDPX) !== 0;
  }

  /** The link's duplex: the partner's, which the chip cannot negotiate (DS-ENC §9.0). */
  private get linkFullDuplex(): boolean {
    return this.linkPartner === 'full-duplex';
  }

  /**
   * MABBIPG as a gap: nibble times minus 3 in full duplex, minus 6 in half (DS-ENC §6.5: 0x15 and
   * 0x12 both give the 9.6 µs of IEEE 802.3).
   */
  private get interPacketGapMs(): number {
    const nibbles = this.reg('MABBIPG') + (this.macFullDuplex ? 3 : 6);
    return nibbles * (ETHERNET_MS_PER_BYTE / 2);
  }

  private writeTsv(tx: PendingTransmit, o: { aborted: boolean; abort?: TxFault }): void {
    const { wire, bytesWithFcs, end } = tx;
    const tsv = new Uint8Array(7);
    const count = o.aborted ? Math.min(bytesWithFcs, 64) : bytesWithFcs;
    tsv[0] = count & 0xff;
    tsv[1] = count >> 8;
    let b2 = Math.min(tx.collisions, 15);
    if (o.abort === 'excessive-collisions') b2 |= 0x0f; // collision count
    // Bit 22, length out of range: the type/length field is over 1500, as on every Ethernet II frame.
    if (tx.giant || (wire.length >= 14 && ((wire[12]! << 8) | wire[13]!) > 1500)) b2 |= 0x40;
    if (!o.aborted) b2 |= 0x80; // done
    tsv[2] = b2;
    let b3 = 0;
    if (wire.length >= 6 && wire[0]! & 1) b3 |= isBroadcast(wire) ? 0x02 : 0x01; // broadcast / multicast
    if (tx.deferred) b3 |= 0x04; // bit 26: packet defer
    if (o.abort === 'excessive-collisions') b3 |= 0x10;
    if (o.abort === 'late-collision') b3 |= 0x20; // TSV bit 29: late collision (false ones: errata #13)
    if (tx.giant) b3 |= 0x40;
    tsv[3] = b3;
    const onWire = Math.max(tx.wireBytes, o.aborted ? 0 : bytesWithFcs + PREAMBLE_SFD_BYTES);
    tsv[4] = onWire & 0xff;
    tsv[5] = onWire >> 8;
    const type = wire.length >= 14 ? (wire[12]! << 8) | wire[13]! : 0;
    tsv[6] = (type === 0x8808 ? 0x01 : 0) | (type === 0x8808 && wire[14] === 0 && wire[15] === 1 ? 0x02 : 0) | (type === 0x8100 ? 0x08 : 0);
    for (let i = 0; i < 7; i++) this.buffer[(end + 1 + i) & 0x1fff] = tsv[i]!;
  }

  // ---- DMA ------------------------------------------------------------------------------------

  private startDma(): void {
    const start = this.reg16('EDMASTL');
    const end = this.reg16('EDMANDL');
    const erxst = this.reg16('ERXSTL');
    const erxnd = this.reg16('ERXNDL');
    const bytes: number[] = [];
    // The DMA wraps within the receive ring like RBM (DS-ENC §13.1).
    for (let p = start, guard = 0; guard < BUFFER_SIZE; guard++) {
      bytes.push(this.buffer[p]!);
      if (p === end) break;
      p = p === erxnd ? erxst : (p + 1) & 0x1fff;
    }
    const checksum = (this.econ1 & ECON1_CSUMEN) !== 0;
    this.dmaTimer = this.clock.schedule(bytes.length * 0.0001, () => {
      this.dmaTimer = undefined;
      if (checksum) {
        let sum = 0;
        for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
        const result = ~sum & 0xffff;
        this.banked[0x16] = result & 0xff; // EDMACSL
        this.banked[0x17] = result >> 8; // EDMACSH
      } else {
        let d = this.reg16('EDMADSTL');
        for (const b of bytes) {
          this.buffer[d] = b;
          d = (d + 1) & 0x1fff;
        }
      }
      this.econ1 &= ~ECON1_DMAST;
      this.eirLatched |= EIR_DMAIF;
      this.updateInterrupt();
    });
  }

  // ---- Receive (cable side) -------------------------------------------------------------------

  /**
   * A frame (no FCS) arrives on the wire. Frames shorter than 60 bytes are padded as the sender's
   * MAC would have. `badCrc` simulates a corrupted frame.
   */
  receiveFrame(frame: Uint8Array, options: { badCrc?: boolean } = {}): void {
    if (!this.linkUp) {
      this.stats.rxDroppedLinkDown++;
      return;
    }
    if (!(this.econ1 & ECON1_RXEN) || !(this.reg('MACON1') & MACON1_MARXEN) || !this.isReady() || this.econ2 & ECON2_PWRSV) {
      this.stats.rxDroppedRxDisabled++;
      return;
    }
    if (this.dmaTimer && this.econ1 & ECON1_CSUMEN) {
      // Errata #17: a DMA checksum in progress aborts the packet being received.
      this.stats.rxDroppedOverflow++;
      this.dropEventSinceLast = true;
      return;
    }
    let data = frame;
    if (data.length < 60) {
      data = new Uint8Array(60);
      data.set(frame);
    }
    let crcOk = !options.badCrc;
    const fcs = crc32(data) ^ (options.badCrc ? 0xffffffff : 0);
    let byteCount = data.length + 4;
    const maxFrame = this.reg16('MAMXFLL') | (this.reg('MAMXFLH') << 8);
    let stored = data;
    if (!(this.reg('MACON3') & MACON3_HFRMEN) && byteCount > maxFrame) {
      // "Frames bigger than MAMXFL will be aborted when ... received" (DS-ENC Register 6-2,
      // MACON3.HFRMEN clear): what is kept is the first MAMXFL bytes off the wire (the FCS never
      // arrives whole), a CRC error — so CRCEN filters it out, and without CRCEN it is stored
      // with that count and "received OK" clear. With HFRMEN set the frame is stored whole, its
      // full count in the RSV, as long as the ring has room (a 9000-byte frame does not fit the
      // 8 KB buffer: an overflow, §7.2.4).
      this.stats.rxDroppedTooLong++;
      crcOk = false;
      byteCount = maxFrame;
      const withFcs = new Uint8Array(data.length + 4);
      withFcs.set(data);
      withFcs.set([fcs & 0xff, (fcs >>> 8) & 0xff, (fcs >>> 16) & 0xff, fcs >>> 24], data.length);
      stored = withFcs.subarray(0, Math.max(0, maxFrame));
    }
    if (this.isPauseFrame(data)) {
      // A PAUSE frame holds our transmitter (full duplex, MACON1.RXPAUS: DS-ENC §6.5); it is
      // stored only with MACON1.PASSALL.
      if (this.macFullDuplex && this.reg('MACON1') & MACON1_RXPAUS && crcOk) {
        const quanta = (data[16]! << 8) | data[17]!;
        this.pausedUntil = this.clock.now() + quanta * PAUSE_QUANTUM_MS;
        this.stats.pauseFramesHonoured++;
      }
      if (!(this.reg('MACON1') & MACON1_PASSALL)) return;
    }
    if (!this.passesFilter(data, crcOk)) {
      if (stored !== data) this.dropEventSinceLast = true; // the aborted frame
      else this.stats.rxFilteredOut++;
      return;
    }
    const erxst = this.reg16('ERXSTL');
    const erxnd = this.reg16('ERXNDL');
    const ringSize = this.receiveRingSize;
    const needed = 6 + byteCount + (byteCount & 1);
    const write = this.rxWritePointer;
    // Errata #14: with an even ERXRDPT the chip can write over unread packets.
    const erxrdptEven = (this.reg16('ERXRDPTL') & 1) === 0;
    const free = erxrdptEven ? ringSize - 1 : this.receiveRingFree;
    if (needed > free || this.packetCount >= 255 || ringSize <= 1) {
      this.stats.rxDroppedOverflow++;
      this.dropEventSinceLast = true;
      this.eirLatched |= EIR_RXERIF;
      this.updateInterrupt();
      return;
    }
    let p = write;
    const put = (b: number) => {
      this.buffer[p] = b;
      p = this.ringNext(p, erxst, erxnd);
    };
    let nextPointer = write;
    for (let i = 0; i < needed; i++) nextPointer = this.ringNext(nextPointer, erxst, erxnd);
    // RSV bit 16 also marks "a packet over 50,000 bit times" (DS-ENC Table 7-3): with HFRMEN.
    const status = this.receiveStatus(data, crcOk) | (byteCount * 8 > LONG_EVENT_BITS ? 1 : 0);
    put(nextPointer & 0xff); put(nextPointer >> 8);
    put(byteCount & 0xff); put(byteCount >> 8);
    put(status & 0xff); put(status >> 8);
    for (const b of stored) put(b);
    if (stored === data) {
      put(fcs & 0xff); put((fcs >>> 8) & 0xff); put((fcs >>> 16) & 0xff); put(fcs >>> 24);
    }
    this.rxWritePointer = nextPointer;
    this.packetCount++;
    this.stats.rxFramesStored++;
    // Errata #6: PKTIF (and with it INT) sometimes fails to rise for a packet EPKTCNT counts.
    const missed = this.pktifMissRate > 0 && randomBelow(this.random, 1_000_000) < this.pktifMissRate * 1_000_000;
    this.pktifMissed = missed && (this.packetCount === 1 || this.pktifMissed);
    this.updateInterrupt();
  }

  /** The address after `p` in the receive ring: ERXND wraps to ERXST, 0x1FFF to 0 (a ring may span it). */
  private ringNext(p: number, erxst: number, erxnd: number): number {
    return p === erxnd ? erxst : (p + 1) & 0x1fff;
  }

  private inReceiveRing(address: number): boolean {
    const erxst = this.reg16('ERXSTL');
    const erxnd = this.reg16('ERXNDL');
    return erxst <= erxnd ? address >= erxst && address <= erxnd : address >= erxst || address <= erxnd;
  }

  /** Bytes in the receive ring; ERXST > ERXND is a ring across 0x1FFF → 0, which the chip allows. */
  private get receiveRingSize(): number {
    const erxst = this.reg16('ERXSTL');
    const erxnd = this.reg16('ERXNDL');
    return ((erxnd - erxst + BUFFER_SIZE) & 0x1fff) + 1;
  }

  /** IEEE 802.3 Annex 31B: MAC control (0x8808), opcode 1, to the reserved group or to us. */
  private isPauseFrame(data: Uint8Array): boolean {
    if (data.length < 18 || data[12] !== 0x88 || data[13] !== 0x08 || data[14] !== 0x00 || data[15] !== 0x01) return false;
    const reserved = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x01];
    return reserved.every((b, i) => data[i] === b) || this.matchesOwnMac(data);
  }

  /** A frame is coming in on the wire now (ESTAT.RXBUSY). */
  private get receiving(): boolean {
    const now = this.clock.now();
    return this.rxOnWire.some((f) => !f.lost && f.start <= now && now < f.end) && (this.econ1 & ECON1_RXEN) !== 0;
  }

  /** RSV bits 31:16 (DS-ENC Table 7-3). */
  private receiveStatus(data: Uint8Array, crcOk: boolean): number {
    let status = 0;
    if (this.dropEventSinceLast) status |= 1 << 0; // bit 16: a packet was dropped since the last one
    this.dropEventSinceLast = false;
    if (!crcOk) status |= 1 << 4; // bit 20: CRC error
    const typeLength = (data[12]! << 8) | data[13]!;
    if (typeLength > 1500) status |= 1 << 6; // bit 22: length out of range (a type field)
    else if (typeLength + 14 > data.length) status |= 1 << 5; // bit 21: length check error
    if (crcOk) status |= 1 << 7; // bit 23: received OK
    if (data[0]! & 1) status |= isBroadcast(data) ? 1 << 9 : 1 << 8; // bits 25/24
    if (typeLength === 0x8808) {
      status |= 1 << 11; // bit 27: control frame
      status |= this.isPauseFrame(data) ? 1 << 12 : 1 << 13; // bit 28: PAUSE; bit 29: unknown opcode
    }
    if (typeLength === 0x8100) status |= 1 << 14; // VLAN
    return status;
  }

  /** DS-ENC §8: ERXFCON filters; 0 means promiscuous. */
  private passesFilter(data: Uint8Array, crcOk: boolean): boolean {
    const erxfcon = this.reg('ERXFCON');
    if (erxfcon & ERXFCON_CRCEN && !crcOk) return false;
    const filters = erxfcon & (ERXFCON_UCEN | ERXFCON_PMEN | ERXFCON_MPEN | ERXFCON_HTEN | ERXFCON_MCEN | ERXFCON_BCEN);
    if (filters === 0) return true;
    const results: boolean[] = [];
    if (erxfcon & ERXFCON_UCEN) results.push(this.matchesOwnMac(data));
    if (erxfcon & ERXFCON_BCEN) results.push(isBroadcast(data));
    // MCEN takes every group address, broadcast (all ones) among them (DS-ENC §8.3).
    if (erxfcon & ERXFCON_MCEN) results.push((data[0]! & 1) === 1);
    if (erxfcon & ERXFCON_HTEN) {
      const pointer = (crc32(data, 0, 6) >>> 23) & 0x3f;
      results.push((this.banked[32 + (pointer >> 3)]! >> (pointer & 7)) & 1 ? true : false);
    }
    // Errata #18: silicon's pattern match lets some other frames through too.
    if (erxfcon & ERXFCON_PMEN) {
      const leak = this.patternMatchLeakRate > 0 && randomBelow(this.random, 1_000_000) < this.patternMatchLeakRate * 1_000_000;
      results.push(this.matchesPattern(data) || leak);
    }
    if (erxfcon & ERXFCON_MPEN) results.push(this.isMagicPacket(data));
    return erxfcon & ERXFCON_ANDOR ? results.every(Boolean) : results.some(Boolean);
  }

  private matchesOwnMac(data: Uint8Array): boolean {
    const own = this.macAddress;
    for (let i = 0; i < 6; i++) if (data[i] !== own[i]) return false;
    return true;
  }

  private matchesPattern(data: Uint8Array): boolean {
    const offset = this.reg16('EPMOL');
    const selected: number[] = [];
    for (let i = 0; i < 64; i++) {
      if ((this.banked[32 + 0x08 + (i >> 3)]! >> (i & 7)) & 1) {
        if (offset + i >= data.length) return false;
        selected.push(data[offset + i]!);
      }
    }
    let sum = 0;
    for (let i = 0; i < selected.length; i += 2) sum += (selected[i]! << 8) | (selected[i + 1] ?? 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const checksum = ~sum & 0xffff;
    return checksum === ((this.reg('EPMCSH') << 8) | this.reg('EPMCSL'));
  }

  private isMagicPacket(data: Uint8Array): boolean {
    const own = this.macAddress;
    outer: for (let i = 0; i + 102 <= data.length; i++) {
      for (let j = 0; j < 6; j++) if (data[i + j] !== 0xff) continue outer;
      for (let r = 0; r < 16; r++) for (let j = 0; j < 6; j++) if (data[i + 6 + r * 6 + j] !== own[j]) continue outer;
      return true;
    }
    return false;
  }

  // ---- Interrupt pin --------------------------------------------------------------------------

  /** INT is active low: `true` means the pin is driven low. */
  get interruptAsserted(): boolean {
    return this.interruptLevel;
  }

  onInterruptChange(callback: (asserted: boolean) => void): () => void {
    this.interruptListeners.add(callback);
    return () => this.interruptListeners.delete(callback);
  }

  private updateInterrupt(): void {
    const level = (this.eie & EIE_INTIE) !== 0 && (this.eir & this.eie & 0x7f) !== 0;
    if (level === this.interruptLevel) return;
    this.interruptLevel = level;
    for (const listener of [...this.interruptListeners]) listener(level);
  }

  // ---- Cable ----------------------------------------------------------------------------------

  /**
   * Plug the cable into `lan`. With `rxWireTime`, a frame the LAN delivers arrives at 10 Mbit/s,
   * as from the switch port on the other end of the cable: the chip has it (INT, EPKTCNT) only
   * once its last bit is in — preamble, frame (padded to 60) and FCS after the wire is free
   * (frames queue on it, 12 bytes of gap between them). Without, and by `receiveFrame`, at once.
   */
  plugInto(lan: VirtualLan): void {
    this.port?.unplug();
    const wasUp = this.linkUp;
    const cable = ++this.cables;
    this.port = lan.plug({
      label: this.label,
      deliver: (frame) => {
        if (!this.rxWireTime) return this.receiveFrame(frame);
        const now = this.clock.now();
        let start = Math.max(now, this.rxWireFreeAt);
        // A half-duplex partner defers to a frame we are sending.
        if (!this.linkFullDuplex && this.txWireEnd > start) start = this.txWireEnd + INTERFRAME_GAP_BYTES * ETHERNET_MS_PER_BYTE;
        const end = start + frameWireTimeMs(frame.length);
        // A full-duplex partner does not: our half-duplex MAC sees a collision, and its frame is garbled.
        const collides = this.linkFullDuplex && !this.macFullDuplex && this.txPending !== undefined && this.txWireStart <= start && start < this.txWireEnd;
        this.rxWireFreeAt = end + INTERFRAME_GAP_BYTES * ETHERNET_MS_PER_BYTE;
        const entry: RxOnWire = { start, end, frame: Uint8Array.from(frame), cable, lost: false, timer: undefined as unknown as TimerHandle };
        entry.timer = this.clock.schedule(end - now, () => this.rxFrameEnded(entry));
        this.rxOnWire.push(entry);
        if (collides) {
          entry.lost = true;
          this.collide(this.txPending!, start);
        }
      },
    });
    if (this.linkUp !== wasUp) this.linkChanged();
  }

  private rxFrameEnded(entry: RxOnWire): void {
    const at = this.rxOnWire.indexOf(entry);
    if (at >= 0) this.rxOnWire.splice(at, 1);
    if (entry.cable !== this.cables || this.heldInReset || this.poweredOff) return;
    if (entry.lost) {
      this.dropEventSinceLast = true;
      return;
    }
    this.receiveFrame(entry.frame);
  }

  unplug(): void {
    const wasUp = this.linkUp;
    this.cables++; // frames still on the wire are lost with the cable
    this.port?.unplug();
    this.port = undefined;
    if (this.linkUp !== wasUp) this.linkChanged();
  }

  /** Link pulses present on the cable (the far end powered and connected). */
  setLinkUp(up: boolean): void {
    const wasUp = this.linkUp;
    this.cableUp = up;
    if (this.linkUp !== wasUp) this.linkChanged();
  }

  get linkUp(): boolean {
    return this.cableUp && this.port !== undefined;
  }

  private linkChanged(): void {
    if (!this.linkUp) this.phstat1LinkLatch = false;
    const phie = this.phy[EMU_PHY.PHIE]!;
    let phir = this.phy[EMU_PHY.PHIR]! | PHIR_PLNKIF;
    if (phie & PHIE_PLNKIE) phir |= PHIR_PGIF;
    this.phy[EMU_PHY.PHIR] = phir;
    this.updateInterrupt();
  }

  // ---- Inspection (tests) ---------------------------------------------------------------------

  /** Queue a fault for the next transmission(s). */
  injectTxFault(fault: TxFault): void {
    this.txFaults.push(fault);
  }

  /** True while a transmission is stuck (errata #12) until the host pulses TXRST. */
  get transmitterStalled(): boolean {
    return this.txStalled;
  }

  /** The station address as programmed in MAADR, first octet first. */
  get macAddress(): Uint8Array {
    const b = (name: EmuRegisterName) => this.reg(name);
    return Uint8Array.of(b('MAADR5'), b('MAADR4'), b('MAADR3'), b('MAADR2'), b('MAADR1'), b('MAADR0'));
  }

  /** A control register by datasheet name, without side effects. */
  peek(name: EmuRegisterName): number {
    const [bank, address] = EMU_REGISTERS[name];
    return this.readRegisterRaw(bank < 0 ? 0 : bank, address);
  }

  /**
   * Set a control register underneath whoever drives the chip, without side effects: a test's
   * fault (a register the driver did not write, as a glitch or another bus master would leave it).
   */
  poke(name: EmuRegisterName, value: number): void {
    const [bank, address] = EMU_REGISTERS[name];
    if (bank < 0 || address >= 0x1a) throw new RangeError(`poke: ${name} is a common register with side effects`);
    this.banked[bank * 32 + address] = value & 0xff;
  }

  /** A 16-bit register pair by the name of its low byte. */
  peek16(low: EmuRegisterName): number {
    const [bank, address] = EMU_REGISTERS[low];
    const b = bank < 0 ? 0 : bank;
    return this.readRegisterRaw(b, address) | (this.readRegisterRaw(b, address + 1) << 8);
  }

  /** A PHY register, without side effects. */
  peekPhy(name: keyof typeof EMU_PHY): number {
    const address = EMU_PHY[name];
    if (address === EMU_PHY.PHSTAT2) return (this.linkUp ? PHSTAT2_LSTAT : 0) | (this.phy[EMU_PHY.PHCON1]! & PHCON1_PDPXMD ? PHSTAT2_DPXSTAT : 0);
    return this.phy[address]!;
  }

  /** The 8 KB buffer memory (live view: tests may corrupt it on purpose). */
  get memory(): Uint8Array {
    return this.buffer;
  }

  /** Packets waiting in the receive ring (EPKTCNT). */
  get pendingPackets(): number {
    return this.packetCount;
  }

  get receiveWritePointer(): number {
    return this.rxWritePointer;
  }

  /** Free bytes in the receive ring (DS-ENC Equation 7-1); the byte at ERXRDPT is never written. */
  get receiveRingFree(): number {
    const size = this.receiveRingSize;
    const erxst = this.reg16('ERXSTL');
    // Positions within the ring, so a ring across 0x1FFF → 0 counts the same way.
    const write = (this.rxWritePointer - erxst + BUFFER_SIZE) & 0x1fff;
    const read = (this.reg16('ERXRDPTL') - erxst + BUFFER_SIZE) & 0x1fff;
    if (write > read) return size - 1 - (write - read);
    if (write === read) return size - 1;
    return read - write - 1;
  }

  get ready(): boolean {
    return this.isReady();
  }

  /** A misuse of the SPI bus seen by the board driving it (boards/sim/chip.ts), reported as ours. */
  reportBusViolation(message: string): void {
    this.violation(`SPI bus: ${message}`);
  }

  private violation(message: string): void {
    if (!this.strict) return;
    const text = `[${this.label} @${this.clock.now().toFixed(4)}ms] ${message}`;
    this.strictViolations.push(text);
    this.onStrictViolation?.(text);
  }

  private regName(bank: number, address: number): string {
    for (const [name, [b, a]] of Object.entries(EMU_REGISTERS)) {
      if (a === address && (b === bank || b === -1)) return name;
    }
    return `bank${bank}:0x${address.toString(16)}`;
  }
}

function isBroadcast(data: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (data[i] !== 0xff) return false;
  return true;
}

export { EMU_REGISTERS, EMU_PHY } from './registers.js';
export type { EmuRegisterName } from './registers.js';
